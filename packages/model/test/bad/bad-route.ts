import { Network } from "@merge/model";

const net = new Network("route");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(a).addr("10.0.0.1/24");
l.socket(b).addr("10.0.0.2/24");
a.route("10.9.0.0/16", "10.7.0.1", l.socket(a)); // <- gateway off the link
export default net;
