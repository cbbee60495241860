import { Network, routing } from "@merge/model";

const net = new Network("noaddr", routing.static);
const a = net.node("a");
const b = net.node("b");
const c = net.node("c");
const ab = net.connect([a, b]);
ab.socket(a).addr("10.0.0.1/24");
ab.socket(b).addr("10.0.0.2/24");
net.connect([b, c]); // <- these sockets have no address
export default net;
