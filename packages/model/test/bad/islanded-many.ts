import { Network } from "@merge/model";

const net = new Network("archipelago"); // <- the network
for (let i = 0; i < 12; i++) {
  const [x, y] = net.nodesNamed(`isle${i}-`, 2);
  net.connect([x!, y!]);
}
export default net;
