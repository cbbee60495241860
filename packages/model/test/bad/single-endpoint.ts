import { Network } from "@merge/model";

const net = new Network("single");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b]);
net.connect([a]); // <- one endpoint
export default net;
