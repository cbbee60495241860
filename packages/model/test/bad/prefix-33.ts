import { Network } from "@merge/model";

const net = new Network("prefix");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(a).addr("10.0.0.1/33"); // <- /33
export default net;
