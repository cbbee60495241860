import { Network } from "@merge/model";

const net = new Network("noprefix");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(a).addrs = ["10.0.0.1"]; // <- no /24
export default net;
