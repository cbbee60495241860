import { custom, ms, Network } from "@merge/model";

const net = new Network("element");
const a = net.node("a", custom("node", "latency", "<=", ms(10))); // <- a link property
const b = net.node("b");
net.connect([a, b]);
export default net;
