import { Network } from "@merge/model";

const net = new Network("banana");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.at(b).addr("banana/24"); // <- not an address
export default net;
