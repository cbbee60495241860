import { metal, Network, virtual } from "@merge/model";

const net = new Network("metal");
const a = net.node("a", metal(true), virtual()); // <- both
const b = net.node("b");
net.connect([a, b]);
export default net;
