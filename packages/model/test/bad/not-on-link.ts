import { Network } from "@merge/model";

const net = new Network("notonlink");
const a = net.node("a");
const b = net.node("b");
const c = net.node("c");
const l = net.connect([a, b]);
net.connect([b, c]);
l.socket(c).addr("10.0.0.3/24"); // <- c is not on l
export default net;
