import { Network } from "@merge/model";

const net = new Network("hostbits");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(a).addr("10.0.0.1/24");
l.socket(b).addr("10.0.0.2/24");
b.route("10.9.1.0/16", "10.0.0.1", l.socket(b)); // <- 10.9.1.0 is not the /16's network address
export default net;
