/**
 * The experiment as a plain node/link graph for the web UI (sigma/graphology).
 * A point-to-point link is one edge; a multipoint link (3+ endpoints) becomes a
 * small "lan" vertex with an edge to each member (a star), so the drawing shows
 * a LAN as one thing rather than a clique.
 */
import type { Experiment } from "@merge/xir";

export interface GraphNode {
  id: string;
  label: string;
  kind: "node" | "lan";
  image?: string;
  addrs?: string[];
  group?: string[];
}
export interface GraphLink {
  id: string;
  source: string;
  target: string;
  link: string;
}
export interface Graph {
  name: string;
  nodes: GraphNode[];
  links: GraphLink[];
}

export function toGraph(x: Experiment): Graph {
  const nodes: GraphNode[] = x.nodes.map((n) => {
    const g: GraphNode = { id: `node:${n.name}`, label: n.name, kind: "node" };
    if (n.image !== undefined) g.image = n.image;
    const addrs = n.sockets.flatMap((s) => s.addrs);
    if (addrs.length) g.addrs = addrs;
    const group = n.properties.group;
    if (group !== undefined) g.group = (Array.isArray(group) ? group : [group]).map(String);
    return g;
  });
  const links: GraphLink[] = [];
  for (const l of x.links) {
    const ends = l.endpoints.map((e) => `node:${e.node}`);
    if (ends.length === 2) {
      links.push({ id: `link:${l.name}`, source: ends[0] as string, target: ends[1] as string, link: l.name });
    } else if (ends.length > 2) {
      const hub = `lan:${l.name}`;
      nodes.push({ id: hub, label: l.name, kind: "lan" });
      ends.forEach((e, i) => {
        links.push({ id: `link:${l.name}:${i}`, source: hub, target: e, link: l.name });
      });
    }
  }
  return { name: x.name, nodes, links };
}
