// An experiment for the wide-area facility of shared hosts (`npm start -- --wide-area`, README "A
// wide-area facility"): three nodes on one LAN. Each shared host takes at most one node of an
// experiment, so the three land on three sites and the LAN crosses the wide area (VXLAN between the
// hosts over routed, latent paths). Debian (bookworm) nodes run sshd with the project's keys: from
// outside, `ssh -p PORT admin@ADDRESS` as `mrg show materialization` lists it (the host's NAT).
import { addressing, image, Network, routing } from "@merge/model";

const net = new Network("wide", addressing.ipv4, routing.static);
const nodes = ["a", "b", "c"].map((name) => net.node(name, image("bookworm")));
net.connect(nodes).named("lan");
export default net;
