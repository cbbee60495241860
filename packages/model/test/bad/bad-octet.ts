import { Network } from "@merge/model";

const net = new Network("octet");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(a).addr("10.0.0.1/24");
l.socket(b).addr("10.0.0.256/24"); // <- 256
export default net;
