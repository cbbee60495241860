// A model that names its experiment with experiment(net) instead of a default export.
import { experiment, Network } from "@merge/model";

const net = new Network("registered");
const a = net.node("a");
const b = net.node("b");
net.connect([a, b]);
experiment(net);
