import { Network, rx } from "@merge/model";

const net = new Network("rxloss");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(b).with(rx.loss.eq(2 as never)); // <- a loss above 1
export default net;
