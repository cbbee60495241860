import { addressing, Network, routing } from "@merge/model";

// A monitoring node reached over the infranet only: allowed, with a warning.
const net = new Network("watched", addressing.ipv4, routing.static);
const a = net.node("a");
net.connect([a, net.node("b")]);
const m = net.node("monitor"); // <-
export default m.network;
