// The demo experiment of the README: four nodes that fit the demo
// facility. Two clients share a LAN with a router; the router reaches the
// server over an emulated 10 ms, 100 Mbit/s link. Addresses and routes are
// worked out by the compiler. The tiny busybox image runs everywhere; use
// image("bookworm") once `cog images build bookworm` has made it.
import {
  addressing,
  capacity,
  cores,
  gb,
  group,
  image,
  latency,
  mbps,
  memory,
  ms,
  Network,
  routing,
} from "@merge/model";

const net = new Network("demo", addressing.ipv4, routing.static);
const c0 = net.node("c0", image("busybox"), cores.ge(1), memory.ge(gb(1)), group("clients"));
const c1 = net.node("c1", image("busybox"), cores.ge(1), memory.ge(gb(1)), group("clients"));
const router = net.node("router", image("busybox"), cores.ge(1), memory.ge(gb(1)));
const server = net.node("server", image("busybox"), cores.ge(2), memory.ge(gb(2)), group("servers"));
server.ingress("http", 80);

net.lan([c0, c1, router]).named("clients");
net.connect([router, server], capacity.eq(mbps(100)), latency.eq(ms(10))).named("wan");

export default net;
