// A star: eight nodes on one multipoint LAN (one broadcast domain, one subnet).
import { addressing, capacity, gbps, Network, routing } from "@merge/model";

const net = new Network("star", addressing.ipv4, routing.static);
const nodes = net.nodesNamed("s", 8);
net.lan(nodes, capacity.eq(gbps(1))).named("lan");

export default net;
