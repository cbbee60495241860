import { latency, ms, Network } from "@merge/model";

const net = new Network("option");
const a = net.node("a", latency.eq(ms(1)) as never); // <- a link constraint on a node
const b = net.node("b");
net.connect([a, b]);
export default net;
