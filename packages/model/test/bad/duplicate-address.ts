import { addressing, Network } from "@merge/model";

const net = new Network("dupaddr", addressing.ipv4);
const a = net.node("a");
const b = net.node("b");
const c = net.node("c");
const l = net.lan([a, b, c]);
l.socket(a).addr("10.1.0.1/24");
l.socket(b).addr("10.1.0.1/24"); // <- same as a
export default net;
