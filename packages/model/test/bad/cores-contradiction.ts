import { cores, Network } from "@merge/model";

const net = new Network("cores");
const a = net.node("a", cores.eq(4));
a.with(cores.eq(8)); // <- 4 and 8
const b = net.node("b");
net.connect([a, b]);
export default net;
