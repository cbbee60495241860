// TypeScript twin of ../emulated-links.py: compiles to the same XIR.
import {
  addressing,
  capacity,
  emulation,
  experiment,
  fraction,
  latency,
  loss,
  mbps,
  ms,
  Network,
  routing,
} from "@merge/model";

const net = new Network("emulated-wan", emulation.netem, addressing.ipv4, routing.static);

const src = net.node("src");
const mid = net.node("mid");
const dst = net.node("dst");

net.connect([src, mid], latency.eq(ms(10)), capacity.eq(mbps(50)));
const lossy = net.connect([mid, dst], latency.eq(ms(25)), loss.eq(fraction(0.02)), capacity.eq(mbps(10)));
lossy.socket(dst).addr("10.1.0.2/24");
lossy.socket(mid).addr("10.1.0.1/24");

experiment(net);
