// Hello world: two nodes on one link, addresses and routes worked out by the compiler.
import { addressing, Network, routing } from "@merge/model";

const net = new Network("hello", addressing.ipv4, routing.static);
const a = net.node("a");
const b = net.node("b");
net.connect([a, b]);

export default net;
