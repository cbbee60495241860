import { Network } from "@merge/model";

const net = new Network("mine");
const other = new Network("theirs");
const a = net.node("a");
const b = other.node("b");
net.connect([a, b]); // <- b is in another network
export default net;
