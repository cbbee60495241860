// An emulated wide-area link: latency, loss and capacity on the link, specific
// NICs and port speeds on its sockets, the netem emulation backend.
import {
  addressing,
  capacity,
  cores,
  emulation,
  gb,
  gbps,
  image,
  latency,
  loss,
  mbps,
  memory,
  ms,
  Network,
  nic,
  percent,
  port,
  routing,
} from "@merge/model";

const net = new Network("emulated", addressing.ipv4, routing.static, emulation.netem);
const client = net.node("client", cores.ge(2), memory.ge(gb(4)), image("bookworm"));
const server = net.node("server", cores.ge(4), memory.ge(gb(8)), image("bookworm"));
server.ingress("tcp", 80);
const wan = net
  .connect([client, server], capacity.le(mbps(50)), latency.eq(ms(40)), loss.eq(percent(0.5)))
  .named("wan");
wan.socket(client).with(nic("e1000"));
wan.socket(server).with(nic("virtio"), port.capacity.ge(gbps(1)), port.queues.ge(2));

export default net;
