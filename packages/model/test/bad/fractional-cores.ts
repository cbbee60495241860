import { cores, Network } from "@merge/model";

const net = new Network("half");
const a = net.node("a", cores.ge(2.5)); // <- half a core
const b = net.node("b");
net.connect([a, b]);
export default net;
