import { gb, memory, Network } from "@merge/model";

const net = new Network("negative");
const a = net.node("a", memory.ge(gb(-1))); // <- negative
const b = net.node("b");
net.connect([a, b]);
export default net;
