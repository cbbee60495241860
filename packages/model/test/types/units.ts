// Type-level checks, run through `tsc` by types.test.ts: each line under
// `@ts-expect-error` must fail to type-check (tsc reports an unused directive
// otherwise), and every other line must type-check.
import {
  capacity,
  cores,
  gb,
  gbps,
  gpu,
  latency,
  layer,
  loss,
  mbps,
  memory,
  ms,
  Network,
  nic,
  percent,
  platform,
  port,
  rx,
} from "@merge/model";

const net = new Network("types");
const a = net.node("a", memory.ge(gb(8)), cores.ge(4), gpu.count.eq(1), platform.eq("arm64"));
const b = net.node("b");
const l = net.connect([a, b], capacity.eq(mbps(100)), latency.le(ms(10)), loss.lt(percent(1)), layer.eq(2));
l.socket(a).with(nic("virtio"), port.capacity.ge(gbps(10)), port.queues.ge(8));
// One direction of the link: toward a node, or rx.* on its socket.
l.toward(b, latency.eq(ms(30)), capacity.le(mbps(2)), loss.lt(percent(1)));
l.socket(b).with(rx.latency.eq(ms(30)), rx.capacity.le(mbps(2)), rx.loss.lt(percent(1)));

// A latency is not a memory size.
// @ts-expect-error
memory.ge(ms(10));
// A plain number has no unit.
// @ts-expect-error
memory.ge(8);
// Capacity is bits per second, not bytes.
// @ts-expect-error
capacity.eq(gb(1));
// Latency is time, not a rate.
// @ts-expect-error
latency.eq(mbps(10));
// Loss is a fraction, not a time.
// @ts-expect-error
loss.eq(ms(1));
// Cores are a count; a quantity with a unit is not.
// @ts-expect-error
cores.ge(gb(4));
// @ts-expect-error
gpu.count.eq(ms(1));
// Port capacity is a rate.
// @ts-expect-error
port.capacity.ge(gb(1));
// A link constraint does not go on a node...
// @ts-expect-error
net.node("c", latency.eq(ms(5)));
// ...and a node constraint does not go on a link.
// @ts-expect-error
net.connect([a, b], memory.ge(gb(1)));
// A socket takes socket constraints only.
// @ts-expect-error
l.socket(a).with(cores.ge(2));
// Closed sets of values: platforms, NIC models, layers.
// @ts-expect-error
platform.eq("vax");
// @ts-expect-error
nic("tulip");
// @ts-expect-error
layer.eq(7);
// `in` takes a list of the property's values.
// @ts-expect-error
memory.in([ms(1)]);
// A direction's latency is time, its capacity a rate.
// @ts-expect-error
rx.latency.eq(mbps(1));
// @ts-expect-error
rx.capacity.le(ms(1));
// toward takes link requirements, not a node's...
// @ts-expect-error
l.toward(b, memory.ge(gb(1)));
// ...and rx.* belongs on a socket, not on the link.
// @ts-expect-error
net.connect([a, b], rx.latency.eq(ms(5)));

export default net;
