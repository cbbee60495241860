import { kind, latency, ms, Network } from "@merge/model";

const net = new Network("towardkind");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.toward(b, latency.eq(ms(30)), kind.eq("wifi_ac")); // <- kind has no direction
export default net;
