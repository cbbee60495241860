import { custom, Network } from "@merge/model";

const net = new Network("bool");
const a = net.node("a", custom("node", "metal", ">", false)); // <- ordering a boolean
const b = net.node("b");
net.connect([a, b]);
export default net;
