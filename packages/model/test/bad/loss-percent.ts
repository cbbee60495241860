import { loss, Network, percent } from "@merge/model";

const net = new Network("loss");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b], loss.eq(percent(150))); // <- 150%
export default net;
