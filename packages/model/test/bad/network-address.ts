import { Network } from "@merge/model";

const net = new Network("netaddr");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.at(a).addr("10.0.0.0/24"); // <- network address
export default net;
