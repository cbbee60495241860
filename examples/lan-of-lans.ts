// A LAN of LANs: 20 routers on a backbone LAN, each with a LAN of 24 hosts;
// 500 nodes, 21 links, routed statically end to end.
import { addressing, group, Network, routing } from "@merge/model";

const net = new Network("lan-of-lans", addressing.ipv4, routing.static);
const routers = net.nodesNamed("router", 20, group("routers"));
net.lan(routers).named("backbone");
routers.forEach((r, i) => {
  const hosts = net.nodesNamed(`h${i}-`, 24, group("hosts", `site${i}`));
  net.lan([r, ...hosts]).named(`site${i}`);
});

export default net;
