import { Network } from "@merge/model";

const net = new Network("overlap");
const a = net.node("a");
const b = net.node("b");
const c = net.node("c");
const ab = net.connect([a, b]);
const bc = net.connect([b, c]); // <- inside ab's subnet
ab.socket(a).addr("10.0.0.1/16");
ab.socket(b).addr("10.0.0.2/16");
bc.socket(b).addr("10.0.1.1/24");
bc.socket(c).addr("10.0.1.2/24");
export default net;
