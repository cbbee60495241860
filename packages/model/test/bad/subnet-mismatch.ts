import { Network } from "@merge/model";

const net = new Network("mismatch");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]); // <- the link
l.socket(a).addr("10.0.0.1/24");
l.socket(b).addr("10.0.1.2/24");
export default net;
