/** XIR experiments for the topology tests and bench: LANs of hosts behind routers on a core ring. */
import type { Experiment, Link, Node } from "@merge/xir";

export function campus(hosts: number, perLan = 10): Experiment {
  const nodes: Node[] = [];
  const links: Link[] = [];
  const lans = Math.ceil(hosts / perLan);
  for (let l = 0; l < lans; l++) {
    const router: Node = {
      name: `r${l}`,
      constraints: [{ prop: "proc.cores", op: ">=", value: 2 }],
      sockets: [0, 1, 2].map((index) => ({ index, addrs: [], constraints: [] })),
      properties: {},
    };
    nodes.push(router);
    const members = [{ node: router.name, socket: 0 }];
    for (let h = 0; h < perLan && l * perLan + h < hosts; h++) {
      const name = `h${l * perLan + h}`;
      nodes.push({
        name,
        image: "bookworm",
        constraints: [{ prop: "memory.capacity", op: ">=", value: 4 * 1024 ** 3 }],
        sockets: [{ index: 0, addrs: [`10.${l >> 8}.${l & 255}.${h + 2}/24`], constraints: [] }],
        properties: { group: ["hosts"] },
      });
      members.push({ node: name, socket: 0 });
    }
    links.push({ name: `lan${l}`, endpoints: members, constraints: [], properties: {} });
  }
  for (let l = 0; l < lans && lans > 1; l++) {
    const next = (l + 1) % lans;
    if (lans === 2 && l === 1) break;
    links.push({
      name: `core${l}`,
      endpoints: [
        { node: `r${l}`, socket: 1 },
        { node: `r${next}`, socket: 2 },
      ],
      constraints: [
        { prop: "capacity", op: "==", value: 1e9 },
        { prop: "latency", op: "==", value: 2e6 },
      ],
      properties: {},
    });
  }
  return { xir: "1.0", name: `campus${hosts}`, parameters: {}, nodes, links };
}
