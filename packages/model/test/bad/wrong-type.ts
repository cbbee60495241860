import { custom, Network } from "@merge/model";

const net = new Network("type");
const a = net.node("a", custom("node", "proc.cores", ">=", "four")); // <- a string
const b = net.node("b");
net.connect([a, b]);
export default net;
