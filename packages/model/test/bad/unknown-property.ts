import { custom, gb, Network } from "@merge/model";

const net = new Network("prop");
const a = net.node("a", custom("node", "memroy.capacity", ">=", gb(1))); // <- typo
const b = net.node("b");
net.connect([a, b]);
export default net;
