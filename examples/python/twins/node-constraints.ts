// TypeScript twin of ../node-constraints.py: compiles to the same XIR.
import { addressing, cores, disk, experiment, gb, group, image, mb, memory, metal, Network, routing } from "@merge/model";

const net = new Network("node-constraints", addressing.ipv4, routing.static);

const server = net.node("server", metal(true), image("2004"), memory.eq(gb(8)), cores.eq(4), group("servers"));
const db = net.node("db", metal(true), disk.ge(gb(200)), memory.ge(gb(16)), group("servers", "storage"));
const clients = [0, 1, 2, 3].map((i) =>
  net.node(`client${i}`, metal(false), image("2004"), cores.ge(1), memory.ge(mb(512)), group("clients")),
);

net.connect([server, db]);
net.connect([server, ...clients]);

experiment(net);
