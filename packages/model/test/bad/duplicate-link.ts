import { Network } from "@merge/model";

const net = new Network("duplink");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b]).named("wire");
net.connect([a, b]).named("wire"); // <- second "wire"
export default net;
