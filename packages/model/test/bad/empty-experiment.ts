import { Network } from "@merge/model";

const net = new Network("nothing"); // <- no nodes
export default net;
