// Dumbbell: two LANs of three hosts, each behind a router, the routers joined
// by an emulated bottleneck (100 Mbit/s, 20 ms).
import { addressing, capacity, latency, mbps, ms, Network, routing } from "@merge/model";

const net = new Network("dumbbell", addressing.ipv4, routing.static);
const left = net.node("rl");
const right = net.node("rr");
const lhosts = [0, 1, 2].map((i) => net.node(`l${i}`));
const rhosts = [0, 1, 2].map((i) => net.node(`r${i}`));
net.lan([left, ...lhosts]).named("left");
net.lan([right, ...rhosts]).named("right");
net.connect([left, right], capacity.eq(mbps(100)), latency.eq(ms(20))).named("bottleneck");

export default net;
