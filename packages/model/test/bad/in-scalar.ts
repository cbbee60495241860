import { custom, Network } from "@merge/model";

const net = new Network("in");
const a = net.node("a", custom("node", "platform", "in", "x86_64")); // <- not a list
const b = net.node("b");
net.connect([a, b]);
export default net;
