import { Network } from "@merge/model";

const net = new Network("twice");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b, a]).named("loop"); // <- a twice on one link
export default net;
