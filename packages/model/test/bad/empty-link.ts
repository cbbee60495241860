import { Network } from "@merge/model";

const net = new Network("empty");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b]);
net.connect([]); // <- no endpoints
export default net;
