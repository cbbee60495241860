/**
 * A synthetic facility, experiment and realization of any size, for tests and
 * benchmarks of the plan and the facility: LANs of `lanSize` nodes on one leaf switch,
 * and an emulated point-to-point link between consecutive LANs' first nodes.
 * With `hosts`, the facility is several machines: node `i` on host
 * `hosts[i % hosts.length]` (so every LAN spans hosts), the infrapod server and
 * the emulator on the first.
 */
import type { Experiment, Facility, Realization, Resource } from "@merge/xir";

export interface Synthetic {
  facility: Facility;
  experiment: Experiment;
  realization: Realization;
}

export function synthetic(
  nodes: number,
  opts: { mzid?: string; lanSize?: number; facility?: string; hosts?: readonly string[] } = {},
): Synthetic {
  const hosts = opts.hosts ?? [];
  const on = (i: number): { host?: string } => (hosts.length ? { host: hosts[i % hosts.length] as string } : {});
  const lanSize = opts.lanSize ?? 10;
  const fac = opts.facility ?? "simfac";
  const mzid = opts.mzid ?? "r0.exp.proj";
  const resources: Resource[] = [
    {
      id: "ifr0",
      kind: "infrapod-server",
      alloc: [],
      props: {},
      ports: [{ name: "eth0", role: "infranet", capacity: 1e10 }],
      ...on(0),
    },
    {
      id: "emu0",
      kind: "emulator",
      alloc: [],
      props: {},
      ports: [{ name: "eth0", role: "xpnet", capacity: 1e11 }],
      ...on(0),
    },
    {
      id: "leaf0",
      kind: "switch",
      alloc: [],
      props: {},
      ports: Array.from({ length: nodes }, (_, i) => ({ name: `swp${i}`, role: "xpnet" as const, capacity: 1e10 })),
      switch: { layer: "leaf", network: "xpnet", vxlan: true, vlanDomain: "d0" },
    },
  ];
  const xp: Experiment = { xir: "1.0", name: mzid.split(".")[1] ?? "exp", parameters: {}, nodes: [], links: [] };
  const rlz: Realization = {
    xir: "1.0",
    id: mzid,
    experiment: "synthetic",
    nodes: [],
    links: [],
    infranets: [{ facility: fac, vni: 100, infrapodServer: "ifr0" }],
  };
  const lans = Math.ceil(nodes / lanSize);
  for (let i = 0; i < nodes; i++) {
    const name = `n${i}`;
    const lan = Math.floor(i / lanSize);
    const head = i % lanSize === 0;
    resources.push({
      id: `m${i}`,
      kind: "node",
      alloc: ["physical"],
      props: { "proc.cores": 8, "memory.capacity": 16 * 2 ** 30 },
      ports: [
        { name: "eth0", role: "infranet", capacity: 1e9 },
        { name: "eth1", role: "xpnet", capacity: 1e10 },
      ],
      ...on(i),
    });
    const sockets = [{ index: 0, addrs: [`10.${lan >> 8}.${lan & 255}.${(i % lanSize) + 1}/24`], constraints: [] }];
    if (head && lan + 1 < lans)
      sockets.push({ index: 1, addrs: [`10.255.${lan >> 8}.${lan & 255}/31`], constraints: [] });
    if (head && lan > 0) sockets.push({ index: 2, addrs: [], constraints: [] });
    xp.nodes.push({ name, image: "bookworm", constraints: [], sockets, properties: {} });
    rlz.nodes.push({
      node: name,
      facility: fac,
      resource: `m${i}`,
      mode: "physical",
      alloc: { cores: 8, memory: 16 * 2 ** 30, disk: 0 },
      interfaces: sockets.map((s) => ({
        socket: s.index,
        port: "eth1",
        virtual: true,
        vlan: 100 + s.index * 1000 + lan,
      })),
    });
  }
  for (let lan = 0; lan < lans; lan++) {
    const members = Array.from({ length: Math.min(lanSize, nodes - lan * lanSize) }, (_, k) => lan * lanSize + k);
    const endpoints = members.map((i) => ({ node: `n${i}`, socket: 0 }));
    xp.links.push({ name: `lan${lan}`, endpoints, constraints: [], properties: {} });
    rlz.links.push({
      link: `lan${lan}`,
      segments: [
        {
          endpoints,
          waypoints: members.map((i) => ({ facility: fac, resource: "leaf0", port: `swp${i}`, vlan: 100 + lan })),
        },
      ],
      external: false,
      capacity: 1e9,
    });
    if (lan + 1 < lans) {
      const a = { node: `n${lan * lanSize}`, socket: 1 };
      const b = { node: `n${(lan + 1) * lanSize}`, socket: 2 };
      xp.links.push({
        name: `wan${lan}`,
        endpoints: [a, b],
        constraints: [
          { prop: "latency", op: "==", value: 10_000_000 },
          { prop: "capacity", op: "<=", value: 1e8 },
        ],
        properties: {},
      });
      rlz.links.push({
        link: `wan${lan}`,
        segments: [
          { endpoints: [a], waypoints: [{ facility: fac, resource: "emu0", port: "eth0", vlan: 1100 + lan }] },
          { endpoints: [b], waypoints: [{ facility: fac, resource: "emu0", port: "eth0", vlan: 2100 + lan }] },
        ],
        emulator: { facility: fac, resource: "emu0" },
        external: false,
        capacity: 1e8,
      });
    }
  }
  const facility: Facility = {
    xir: "1.0",
    name: fac,
    resources,
    cables: [],
    tags: { vlan: { d0: [{ first: 100, last: 4000 }] }, vni: [{ first: 100, last: 10000 }] },
  };
  return { facility, experiment: xp, realization: rlz };
}
