/**
 * Shared set-up for the linux data plane tests: they run only as root with
 * network namespaces (skipped with the reason otherwise), each file in its own
 * temporary data directory, every materialization id unique to the run, and
 * everything swept afterwards, also when a test fails.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type Fragment, linkEmulation, planMaterialization } from "@merge/materialize";
import {
  type Experiment,
  type Facility,
  type Link,
  linkOf,
  type Node,
  type Realization,
  type Resource,
} from "@merge/xir";
import type { ActionContext, Backend, EmulationSpec, InfrapodSpec, LinkSpec, NodeSpec } from "../../src/backend.ts";
import { LinuxDataPlane } from "../../src/linux/dataplane.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { isClean, leftovers, sweep } from "../../src/linux/sweep.ts";
import { guestKernel } from "../../src/linux/vm-image.ts";

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return "linux data plane tests need root (network namespaces, mounts)";
  const r = spawnSync("ip", ["netns", "list"]);
  if (r.status !== 0) return "linux data plane tests need network namespaces (`ip netns` failed)";
  return false;
}
export const skip = skipReason();

/** Why the VM tests cannot run here (no root, no QEMU, no guest kernel), or false. */
export function qemuSkip(): string | false {
  if (skip) return skip;
  if (!existsSync("/usr/bin/qemu-system-x86_64")) return "VM tests need qemu-system-x86 (scripts/setup.sh installs it)";
  try {
    guestKernel();
  } catch (e) {
    return (e as Error).message;
  }
  return false;
}

/**
 * Mounts in any process's view that `match` picks by their root and mount point (mountinfo's
 * fourth and fifth fields), one `<pid>: <root> <point>` each: what a test asserts is gone.
 */
export function mountsWhere(match: (root: string, point: string) => boolean): string[] {
  const out = new Set<string>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      for (const l of readFileSync(`/proc/${e}/mountinfo`, "utf8").split("\n")) {
        const [root = "", point = ""] = l.split(" ").slice(3, 5);
        if (match(root, point)) out.add(`${e}: ${root} ${point}`);
      }
    } catch {}
  }
  return [...out];
}

export interface Harness {
  dp: LinuxDataPlane;
  dataDir: string;
  /** A materialization id unique to this run. */
  mzid(name: string): string;
  /** Sweep every materialization this harness named and remove the data dir; throws if anything is left. */
  close(): Promise<void>;
}

export async function harness(opts: { storage?: string } = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), "mrg-linux-test-"));
  const dp = await LinuxDataPlane.open({ dataDir, defaultImage: "busybox", ...opts });
  const run = randomBytes(4).toString("hex");
  const ids: string[] = [];
  return {
    dp,
    dataDir,
    mzid(name) {
      const id = `${name}.t${run}.test`;
      ids.push(id);
      return id;
    },
    async close() {
      const left = [];
      for (const id of ids) {
        const l = await sweep(prefixOf(id), dataDir);
        if (!isClean(l)) left.push(`${id}: ${JSON.stringify(l)}`);
      }
      rmSync(dataDir, { recursive: true, force: true });
      if (left.length) throw new Error(`left behind: ${left.join("; ")}`);
    },
  };
}

// What whole-stack tests (packages/e2e) look at on the data plane, beyond the public entry point.
/**
 * The enclosing suite's harness: made before its tests, swept and closed after
 * them (what most data plane suites open with); its members are there once the
 * suite's `before` has run.
 */
export function suiteHarness(): Harness {
  const h = {} as Harness;
  before(async () => {
    Object.assign(h, await harness());
  });
  after(async () => {
    await h.close?.();
  });
  return h;
}

/**
 * Nodes a and b joined by the p2p link `ab` (socket 0, eth1 on each) with `latencyNs` of emulation,
 * as the backend tests drive rex's calls: the infrapod's DNS entries (a 172.30.0.2, b 172.30.0.3),
 * then both node setups and, in parallel, the link and its emulation, as the driver orders them.
 */
export async function pairOnBackend(
  b: Backend,
  ctx: ActionContext,
  pod: InfrapodSpec,
  nodes: [a: NodeSpec, b: NodeSpec],
  latencyNs: number,
): Promise<{ link: LinkSpec; emu: EmulationSpec; endpoints: LinkSpec["endpoints"] }> {
  const { mzid } = pod;
  await b.infrapodEntries(
    pod,
    [
      { name: "a", mac: "02:4d:00:00:00:01", address: "172.30.0.2" },
      { name: "b", mac: "02:4d:00:00:00:02", address: "172.30.0.3" },
    ],
    ctx,
  );
  const endpoints = nodes.map((n) => ({ node: n.node, socket: 0, resource: n.resource, port: "eth1" }));
  const link: LinkSpec = {
    mzid,
    vindex: 0,
    link: "ab",
    kind: "p2p",
    endpoints,
    segments: [],
    emulator: "emu0",
    capacity: 1e9,
  };
  const emu: EmulationSpec = {
    mzid,
    vindex: 0,
    emulation: mzid,
    emulator: "emu0",
    links: [{ link: "ab", endpoints, params: { latency: latencyNs } }],
  };
  await Promise.all([
    ...nodes.map((n) => b.nodeSetup(n, ctx)),
    (async () => {
      await b.linkCreate(link, ctx);
      await b.emulationSetup(emu, ctx);
    })(),
  ]);
  return { link, emu, endpoints };
}

export { check } from "../../src/linux/command.ts";
export { nodePid, nodeStop } from "../../src/linux/container.ts";
export { namesOf } from "../../src/linux/names.ts";
export { alive, listNetns, processesIn } from "../../src/linux/processes.ts";
export { isClean, leftovers };

/**
 * An experiment's fragments on one local facility, through the materialization
 * plan as the portal computes it (`planMaterialization`): every node on a
 * machine of its own (virtual, with the limits its constraints ask for, when
 * it constrains cores or memory), every link through one switch, links whose
 * constraints ask for latency, loss or capacity through the emulator. The
 * embedding is the obvious one; what the linux data plane gets is the real plan.
 */
export function localPlan(xp: Experiment, mzid: string): Fragment[] {
  const facility = "local";
  const resources: Resource[] = [
    {
      id: "ifr0",
      kind: "infrapod-server",
      alloc: [],
      props: {},
      ports: [{ name: "eth0", role: "infranet", capacity: 1e10 }],
    },
    { id: "emu0", kind: "emulator", alloc: [], props: {}, ports: [{ name: "eth0", role: "xpnet", capacity: 1e10 }] },
    { id: "leaf0", kind: "switch", alloc: [], props: {}, ports: [{ name: "swp0", role: "xpnet", capacity: 1e10 }] },
  ];
  const rlz: Realization = {
    xir: "1.0",
    id: mzid,
    experiment: xp.name,
    nodes: [],
    links: [],
    infranets: [{ facility, vni: 100, infrapodServer: "ifr0" }],
  };
  const held = (n: Node, prop: string) => {
    const c = n.constraints.find((k) => k.prop === prop && typeof k.value === "number");
    return c ? (c.value as number) : 0;
  };
  for (const [i, n] of xp.nodes.entries()) {
    const resource = `m${i}`;
    resources.push({
      id: resource,
      kind: "node",
      alloc: ["physical", "virtual"],
      props: {},
      ports: [
        { name: "eth0", role: "infranet", capacity: 1e10 },
        { name: "eth1", role: "xpnet", capacity: 1e10 },
      ],
    });
    const cores = held(n, "proc.cores");
    const memory = held(n, "memory.capacity");
    // A node asking for a VM is one, its sockets' NIC models as asked (what the engine would choose).
    const vm = n.constraints.some((c) => c.prop === "virt.kind" && c.op === "==" && c.value === "vm");
    const nic = (s: Node["sockets"][number]) =>
      s.constraints.find((c) => c.prop === "port.model" && c.op === "==" && typeof c.value === "string")?.value as
        | string
        | undefined;
    rlz.nodes.push({
      node: n.name,
      facility,
      resource,
      mode: vm || cores || memory ? "virtual" : "physical",
      ...(vm ? { kind: "vm" as const } : {}),
      alloc: { cores, memory, disk: 0 },
      interfaces: n.sockets.map((s) => ({
        socket: s.index,
        port: "eth1",
        virtual: true,
        ...(vm && nic(s) ? { model: nic(s) } : {}),
      })),
    });
  }
  for (const [i, l] of xp.links.entries()) {
    const vlan = 100 + i;
    const emulated = linkEmulation(l, xp) !== undefined;
    const capacity = l.constraints.find((c) => c.prop === "capacity" && typeof c.value === "number");
    rlz.links.push({
      link: l.name,
      segments: emulated
        ? l.endpoints.map((e) => ({ endpoints: [e], waypoints: [{ facility, resource: "emu0", port: "eth0", vlan }] }))
        : [{ endpoints: l.endpoints, waypoints: [{ facility, resource: "leaf0", port: "swp0", vlan }] }],
      ...(emulated ? { emulator: { facility, resource: "emu0" } } : {}),
      external: false,
      capacity: capacity ? (capacity.value as number) : 1e9,
    });
  }
  const model: Facility = {
    xir: "1.0",
    name: facility,
    resources,
    cables: [],
    tags: { vlan: { d0: [{ first: 100, last: 4000 }] }, vni: [{ first: 100, last: 10000 }] },
  };
  const plan = planMaterialization(rlz, xp, [model]);
  return plan.facilities[0]?.fragments ?? [];
}

export function node(name: string, addrs: string[][], routes: Node["routes"] = []): Node {
  return {
    name,
    constraints: [],
    properties: {},
    sockets: addrs.map((a, index) => ({ index, addrs: a, constraints: [] })),
    routes,
  };
}

/** A link as the linux tests write it: xir's linkOf. */
export const link = linkOf;

export function experiment(
  name: string,
  nodes: Node[],
  links: Link[],
  parameters: Experiment["parameters"] = {},
): Experiment {
  return { xir: "1.0", name, parameters, nodes, links };
}

/** a — b — c, 10.0.0.0/24 and 10.0.1.0/24, static routes through b (as the routing reticulator writes them). */
export function line3(abConstraints: Link["constraints"] = []): Experiment {
  return experiment(
    "line3",
    [
      node("a", [["10.0.0.1/24"]], [{ dest: "10.0.1.0/24", gateway: "10.0.0.2", socket: 0 }]),
      node("b", [["10.0.0.2/24"], ["10.0.1.1/24"]]),
      node("c", [["10.0.1.2/24"]], [{ dest: "10.0.0.0/24", gateway: "10.0.1.1", socket: 0 }]),
    ],
    [
      link(
        "ab",
        [
          ["a", 0],
          ["b", 0],
        ],
        abConstraints,
      ),
      link("bc", [
        ["b", 1],
        ["c", 0],
      ]),
    ],
    { routing: "static" },
  );
}

/** Run a host program in a node's network namespace (host tools such as iperf3 against the node's network). */
export function inNetns(netns: string, argv: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync("nsenter", [`--net=${netns}`, "--", ...argv], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Until something listens on TCP `port` in `netns` (a server just spawned there), at most `timeoutMs`. */
export async function listening(netns: string, port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!inNetns(netns, ["ss", "-Hltn", `sport = :${port}`]).stdout.trim()) {
    if (Date.now() > end) throw new Error(`nothing listens on port ${port} in ${netns} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Each reply's RTT (ms) in ping output; throws if there is none. */
function replyTimes(out: string): number[] {
  const t = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (!t.length) throw new Error(`no replies in ping output: ${out}`);
  return t;
}

/** Median RTT in ms from ping output (robust to one packet delayed by a busy host). */
export function medianRtt(out: string): number {
  const t = replyTimes(out).sort((x, y) => x - y);
  return t[Math.floor(t.length / 2)]!;
}

/** The fastest reply's RTT in ms (see `fastest`). */
export const minRtt = (out: string): number => fastest(replyTimes(out));

/** Average RTT in ms from busybox ping output. */
export function avgRtt(pingOut: string): number {
  const m = /min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(pingOut);
  if (!m) throw new Error(`no RTT in ping output: ${pingOut}`);
  return Number(m[1]);
}

/**
 * Ping from a node's network namespace at real-time priority: RTT is measured
 * by the pinging program, and on a loaded host a starved ping would add its own
 * scheduling delay to what it reports. Returns busybox ping's output.
 */
export function rtPing(
  netns: string,
  target: string,
  count: number,
  interval = 0.1,
): { status: number; stdout: string } {
  const r = spawnSync(
    "nsenter",
    [
      `--net=${netns}`,
      "--",
      "chrt",
      "-f",
      "30",
      "busybox",
      "ping",
      "-c",
      String(count),
      "-i",
      String(interval),
      "-W",
      "2",
      target,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  return { status: r.status ?? 1, stdout: (r.stdout ?? "") + (r.stderr ?? "") };
}

/** The round trips (ms) of `n` pings from namespace `netns` to `to`; lost ones are missing. */
export function pings(netns: string, to: string, n = 5): number[] {
  const r = spawnSync("ip", ["netns", "exec", netns, "ping", "-c", String(n), "-i", "0.2", "-W", "2", to], {
    encoding: "utf8",
  });
  return [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/** The fastest of `n` round trips: the path's latency, without what a loaded machine's scheduling adds. */
export const fastest = (v: number[]) => (v.length ? Math.min(...v) : Number.NaN);

/** Every process's argv and environment on the machine: where a private key must never appear. */
export function everyArgvAndEnv(): string {
  let out = "";
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    for (const f of ["cmdline", "environ"]) {
      try {
        out += readFileSync(`/proc/${p}/${f}`, "latin1");
      } catch {}
    }
  }
  return out;
}
