// A ring of six nodes: a topology with a cycle. Routing follows a spanning
// tree of the ring, so every node still reaches every other.
import { addressing, Network, routing } from "@merge/model";

const net = new Network("ring", addressing.ipv4, routing.static);
const nodes = net.nodesNamed("n", 6);
for (const [i, n] of nodes.entries()) net.connect([n, nodes[(i + 1) % nodes.length]!]);

export default net;
