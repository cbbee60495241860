import { Network } from "@merge/model";

const net = new Network("dup");
const a = net.node("a");
const b = net.node("a"); // <- second "a"
net.connect([a, b]);
export default net;
