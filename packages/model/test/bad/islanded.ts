import { Network } from "@merge/model";

const net = new Network("islands"); // <- the network
const a = net.node("a");
const b = net.node("b");
net.node("c");
net.connect([a, b]);
export default net;
