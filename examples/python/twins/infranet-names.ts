// TypeScript twin of ../infranet-names.py: compiles to the same XIR.
import { emulation, experiment, latency, Network, nameResolution, routing, us } from "@merge/model";

const net = new Network("hello", routing.static, nameResolution.infranet, emulation.click);
const a = net.node("a");
const r = net.node("r");
const b = net.node("b");

const link0 = net.connect([a, r], latency.eq(us(500)));
const link1 = net.connect([b, r], latency.eq(us(500)));

link0.socket(a).addr("10.0.0.1/24");
link0.socket(r).addr("10.0.0.2/24");
link1.socket(r).addr("10.0.1.2/24");
link1.socket(b).addr("10.0.1.1/24");

experiment(net);
