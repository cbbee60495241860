import { image, Network } from "@merge/model";

const net = new Network("image");
const a = net.node("a", image("bookwrom")); // <- typo
const b = net.node("b");
net.connect([a, b]);
export default net;
