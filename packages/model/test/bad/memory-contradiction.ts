import { gb, memory, Network } from "@merge/model";

const net = new Network("memory");
const a = net.node("a", memory.ge(gb(8)), memory.le(gb(4))); // <- 8 GiB and 4 GiB
const b = net.node("b");
net.connect([a, b]);
export default net;
