// TypeScript twin of ../hello-world.py: compiles to the same XIR.
import { experiment, Network } from "@merge/model";

const net = new Network("hello-world");
const a = net.node("a");
const b = net.node("b");
const link = net.connect([a, b]);
link.socket(a).addr("10.0.0.1/24");
link.socket(b).addr("10.0.0.2/24");

experiment(net);
