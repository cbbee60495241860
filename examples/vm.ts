// A virtual machine beside a container: `vm` is a QEMU VM (its own kernel,
// an e1000 NIC on the link, half of its core's host CPU bandwidth), `ct` a
// container; they talk across an emulated 5 ms link. `mrg show
// materialization` reports the profile the VM got (accel, cores, memory, CPU
// cap, NIC models). Add `clock.dilation.eq(10)` to `vm` for a guest whose
// clock runs 10 times slower than the host's.
import { addressing, cores, cpu, image, latency, mb, memory, ms, Network, nic, routing, virt } from "@merge/model";

const net = new Network("vm", addressing.ipv4, routing.static);
const vm = net.node("vm", virt.kind.eq("vm"), cores.eq(1), memory.eq(mb(256)), cpu.share.eq(0.5));
const ct = net.node("ct", image("busybox"), cores.eq(1), memory.ge(mb(256)));
const link = net.connect([vm, ct], latency.eq(ms(5))).named("l");
link.socket(vm).with(nic("e1000"));

export default net;
