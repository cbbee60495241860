import { Network } from "@merge/model";

const net = new Network("names");
const a = net.node("web server"); // <- a hostname has no spaces
const b = net.node("b");
net.connect([a, b]);
export default net;
