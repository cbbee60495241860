import { gpu, Network } from "@merge/model";

const net = new Network("emptyin");
const a = net.node("a", gpu.model.in([])); // <- empty list
const b = net.node("b");
net.connect([a, b]);
export default net;
