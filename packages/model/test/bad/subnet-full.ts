import { addressing, Network } from "@merge/model";

const net = new Network("full", addressing.ipv4);
const nodes = net.nodesNamed("n", 4);
const lan = net.lan(nodes); // <- a /30 holds two hosts
lan.socket(nodes[0]!).addr("10.9.0.1/30");
export default net;
