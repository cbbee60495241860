import { Network } from "@merge/model";

const net = new Network("bcast");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.at(b).addr("10.0.0.255/24"); // <- broadcast
export default net;
