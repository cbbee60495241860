import { Network } from "@merge/model";

const net = new Network("islands"); // <- the network
const a = net.node("a");
const b = net.node("b");
net.connect([a, b]);
net.connect([net.node("c"), net.node("d")]);
net.node("monitor");
export default net;
