import { latency, ms, Network } from "@merge/model";

const net = new Network("latency");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b], latency.lt(ms(5)), latency.gt(ms(10))); // <- below 5 and above 10
export default net;
