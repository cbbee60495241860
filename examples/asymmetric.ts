// One link, two directions. Node a sits at the far end of a slow downlink (a
// remote site fed over a congested, long-delay path): what b sends to a gets
// 2 Mbit/s and 30 ms, while a's uplink to b keeps the link's own 10 Mbit/s and
// 10 ms. `toward(a, ...)` sets the direction that delivers to a; it is the same
// as `wire.socket(a).with(rx.capacity.eq(mbps(2)), rx.latency.eq(ms(30)))`.
// Sized like demo.ts, so it fits the demo facility.
import { addressing, capacity, cores, gb, image, latency, mbps, memory, ms, Network, routing } from "@merge/model";

const net = new Network("asymmetric", addressing.ipv4, routing.static);
const a = net.node("a", image("busybox"), cores.ge(1), memory.ge(gb(1)));
const b = net.node("b", image("busybox"), cores.ge(1), memory.ge(gb(1)));

net
  .connect([a, b], latency.eq(ms(10)), capacity.eq(mbps(10)))
  .named("wire")
  .toward(a, capacity.eq(mbps(2)), latency.eq(ms(30)));

export default net;
