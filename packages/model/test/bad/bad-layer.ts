import { custom, Network } from "@merge/model";

const net = new Network("layer");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b], custom("link", "layer", "==", 7)); // <- layer 7
export default net;
