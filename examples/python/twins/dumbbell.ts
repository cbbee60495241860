// TypeScript twin of ../dumbbell.py: compiles to the same XIR.
import { addressing, capacity, cores, experiment, gbps, mbps, Network, routing } from "@merge/model";

const net = new Network("dumbbell", routing.static, addressing.ipv4);

const left = [0, 1, 2].map((i) => net.node(`l${i}`));
const right = [0, 1, 2].map((i) => net.node(`r${i}`));
const rl = net.node("router-left", cores.ge(2));
const rr = net.node("router-right", cores.ge(2));

for (const h of left) net.connect([h, rl], capacity.eq(gbps(1)));
for (const h of right) net.connect([h, rr], capacity.eq(gbps(1)));

net.connect([rl, rr], capacity.eq(mbps(100)));

experiment(net);
