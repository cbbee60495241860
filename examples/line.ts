// A line of six nodes with static routing. The first link's addresses are the
// user's; the compiler addresses the rest around them.
import { addressing, Network, routing } from "@merge/model";

const net = new Network("line", addressing.ipv4, routing.static);
const nodes = net.nodesNamed("n", 6);
for (let i = 0; i + 1 < nodes.length; i++) {
  const l = net.connect([nodes[i]!, nodes[i + 1]!]);
  if (i === 0) {
    l.socket(nodes[0]!).addr("10.0.0.1/24");
    l.socket(nodes[1]!).addr("10.0.0.2/24");
  }
}

export default net;
