import { gbps, Network, port } from "@merge/model";

const net = new Network("port");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(a).with(port.capacity.ge(gbps(10)), port.capacity.le(gbps(1))); // <- 10G and 1G
export default net;
