/**
 * Control access to the nodes of a shared host through NAT (a wide-area
 * facility, ProtoGENI "version zero"): each node on the host gets a block of
 * ports on the host's address; port `first` is forwarded to the node's ssh
 * (port 22 at its infranet address), `first+1 … last` to the same port numbers
 * on the node. From outside: `ssh -p <first> <user>@<host address>`.
 *
 * Infranets of materializations overlap (every one is 172.30/16), so the host
 * cannot route to a node's infranet address itself. Two steps instead:
 * 1. the host's namespace (nftables table `<prefix>nat`, so the sweep takes it)
 *    DNATs the block to the materialization's service address (the /30 its
 *    infrapod namespace has towards the host, `<prefix>s` ↔ `ceth1`; made here
 *    on hosts without the infrapod) and masquerades it to the host's end;
 * 2. the infrapod namespace (or the host's infranet switch, table `mrgnat`)
 *    DNATs each port to its node and masquerades to its own infranet address,
 *    so the node answers on the infranet: the infrapod's gateway address, or
 *    on a host without the infrapod an address of the switch's own
 *    (`natInfranetAddress`: below the top 256 addresses, which XDCs take).
 * Only connections DNAT'd there are forwarded from the infranet to the host.
 * The blocks in use are each materialization's `nat.json`, so a sweep of the
 * materialization frees its blocks with everything else.
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeControlReport } from "@merge/materialize";
import { type HostNat, natProblems } from "@merge/xir";
import { formatIPv4, network, parsePrefix, size } from "@merge/xir/ipv4";
import { run } from "./command.ts";
import { type Env, mzDir } from "./env.ts";
import { serviceAddresses } from "./infrapod.ts";
import { namesOf } from "./names.ts";
import { listNetns } from "./processes.ts";
import { vethAdd } from "./veth.ts";

/**
 * A host's NAT for control access: the facility model's (`hosts.<name>.nat`,
 * handed to the agent with each node) or the agent's own flags
 * (`cog host agent --nat`, which override the model's).
 */
export interface NatOptions extends HostNat {
  /** The host's name, as the infranet spec lists hosts (its place there picks its infranet address). */
  host?: string;
}

/** How a node is reached from outside: `ssh -p <ssh> <address>`; ports first…last forward to the node. */
export type NodeControl = NodeControlReport;

interface NatState {
  /** node → the first port of its block and its infranet address. */
  nodes: Record<string, { first: number; infranet: string }>;
}

const SSH = 22;
const stateFile = (env: Env, prefix: string) => join(mzDir(env, prefix), "nat.json");

function readState(env: Env, prefix: string): NatState {
  const f = stateFile(env, prefix);
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as NatState) : { nodes: {} };
}

function writeState(env: Env, prefix: string, s: NatState): void {
  const f = stateFile(env, prefix);
  writeFileSync(`${f}.tmp`, JSON.stringify(s, null, 2));
  renameSync(`${f}.tmp`, f);
}

/** First ports of every block given out on this host (every materialization's nat.json). */
function blocksInUse(env: Env): Set<number> {
  const used = new Set<number>();
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(env.dataDir, "mz"));
  } catch {
    return used;
  }
  for (const d of dirs) {
    try {
      const s = JSON.parse(readFileSync(join(env.dataDir, "mz", d, "nat.json"), "utf8")) as NatState;
      for (const n of Object.values(s.nodes)) used.add(n.first);
    } catch {}
  }
  return used;
}

/** Check a NAT range as an operator gives it (the model's rules, `natProblems`); the error names what would be valid. */
export function natProblem(o: NatOptions): string | undefined {
  const p = natProblems(o, "")[0];
  return p && `${p.field === ".address" ? "--nat-address" : `--nat ${p.field.slice(1)}`}: ${p.message}`;
}

/** Parse `FIRST-LAST[/PER_NODE]` (default 10 ports a node). */
export function parseNatPorts(text: string): Pick<NatOptions, "first" | "last" | "perNode"> {
  const m = /^(\d+)-(\d+)(?:\/(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`--nat '${text}': expected FIRST-LAST[/PORTS_PER_NODE], e.g. 20000-29999/10`);
  return { first: Number(m[1]), last: Number(m[2]), perNode: Number(m[3] ?? 10) };
}

/**
 * This host's own address on a materialization's infranet when it holds no
 * infrapod: the `index`th host of the infranet (index ≥ 1; the infrapod's host
 * is 0) counting down from 256 below the top, clear of nodes (from the bottom)
 * and XDCs (the top 256).
 */
export function natInfranetAddress(subnet: string, index: number): { address: string; bits: number } {
  const c = parsePrefix(subnet);
  if (!c) throw new Error(`infranet subnet "${subnet}" is not an IPv4 prefix`);
  const base = network(c.addr, c.prefix);
  const h = size(c.prefix) - 2 - 256 - index;
  if (h < 2) throw new Error(`infranet ${subnet} is too small for host ${index}'s NAT address`);
  return { address: formatIPv4(base + h), bits: c.prefix };
}

export function controlOf(o: NatOptions, first: number): NodeControl {
  return { address: o.address, first, last: first + o.perNode - 1, ssh: first };
}

/** The node's control block (kept if it has one), its NAT rules on this host in place. */
export async function natNode(
  env: Env,
  o: NatOptions,
  prefix: string,
  infranet: { subnet: string; hosts?: string[] },
  node: { name: string; address: string },
  switchOnly: boolean,
): Promise<NodeControl> {
  const s = readState(env, prefix);
  let first = s.nodes[node.name]?.first;
  if (first === undefined) {
    const used = blocksInUse(env);
    for (let p = o.first; p + o.perNode - 1 <= o.last; p += o.perNode)
      if (!used.has(p)) {
        first = p;
        break;
      }
    if (first === undefined)
      throw new Error(
        `node ${node.name}: no NAT ports left on this host (${o.first}-${o.last}, ${o.perNode} a node, all taken)`,
      );
  }
  s.nodes[node.name] = { first, infranet: node.address };
  writeState(env, prefix, s);
  await inTurn(prefix, () => natRules(env, o, prefix, infranet, switchOnly));
  return controlOf(o, first);
}

/** Forget the node's block and its rules (the last node's takes the tables along). */
export async function natRemove(env: Env, o: NatOptions, prefix: string, node: string): Promise<void> {
  if (!existsSync(stateFile(env, prefix))) return;
  const s = readState(env, prefix);
  if (!s.nodes[node]) return;
  delete s.nodes[node];
  writeState(env, prefix, s);
  await inTurn(prefix, () => natRules(env, o, prefix, undefined, false));
}

/** Every node of the materialization with a NAT block on this host. */
export function natControls(env: Env, o: NatOptions, prefix: string): Record<string, NodeControl> {
  const s = readState(env, prefix);
  return Object.fromEntries(Object.entries(s.nodes).map(([n, v]) => [n, controlOf(o, v.first)]));
}

async function nft(netns: string | undefined, text: string): Promise<void> {
  const r = netns
    ? await run("ip", ["netns", "exec", netns, "nft", "-f", "-"], text)
    : await run("nft", ["-f", "-"], text);
  if (r.code !== 0) throw new Error(`nft${netns ? ` in ${netns}` : ""}: ${r.stderr.trim()}`);
}

/** A table made anew in one transaction (declared, deleted, declared with its rules). */
const table = (name: string, body: string) =>
  `table ip ${name}\ndelete table ip ${name}\ntable ip ${name} {\n${body}}\n`;

/** Rules being made per materialization: one at a time, each from the state as it is then (nodes set up side by side). */
const applying = new Map<string, Promise<void>>();

/** `work` (making the prefix's rules) once the prefix's work before it settled, failed or not. */
function inTurn(prefix: string, work: () => Promise<void>): Promise<void> {
  const next = (applying.get(prefix) ?? Promise.resolve()).catch(() => {}).then(work);
  applying.set(prefix, next);
  void next
    .finally(() => {
      if (applying.get(prefix) === next) applying.delete(prefix);
    })
    .catch(() => {});
  return next;
}

async function natRules(
  env: Env,
  o: NatOptions,
  prefix: string,
  infranet: { subnet: string; hosts?: string[] } | undefined,
  switchOnly: boolean,
): Promise<void> {
  const s = readState(env, prefix);
  const n = namesOf(prefix);
  const hostTable = `${prefix}nat`;
  const nodes = Object.entries(s.nodes);
  const podNs = listNetns().includes(n.infrapod) ? n.infrapod : undefined;
  // Nothing left to forward, or (a removal) nothing left to forward to: no tables.
  if (nodes.length === 0 || (!podNs && !infranet)) {
    await run("nft", ["delete", "table", "ip", hostTable]);
    if (podNs) await run("ip", ["netns", "exec", podNs, "nft", "delete", "table", "ip", "mrgnat"]);
    return;
  }
  if (!podNs) throw new Error(`materialization ${prefix} has no infrapod or infranet switch on this host`);
  const svc = serviceAddresses(prefix);
  // A host without the infrapod: the service veth into its infranet switch, and the switch's own infranet address.
  if (infranet && switchOnly) {
    const links = await run("ip", ["-o", "link", "show", n.serviceHost]);
    if (links.code !== 0)
      await env.ip.submit([
        vethAdd(`name ${n.serviceHost}`, `name ceth1 netns ${podNs}`),
        `addr add ${svc.host}/30 dev ${n.serviceHost}`,
        `link set dev ${n.serviceHost} up`,
      ]);
    const index = Math.max(1, infranet.hosts?.indexOf(o.host ?? "") ?? 1);
    const own = natInfranetAddress(infranet.subnet, index);
    await env.ipIn(podNs).submit([`addr add ${svc.pod}/30 dev ceth1`, "link set dev ceth1 up"]);
    await env.ipIn(podNs).submit([`addr add ${own.address}/${own.bits} dev ibr`]);
  }
  for (const ns of [undefined, podNs]) {
    const args = ["-qw", "net.ipv4.ip_forward=1"];
    const r = ns ? await run("ip", ["netns", "exec", ns, "sysctl", ...args]) : await run("sysctl", args);
    if (r.code !== 0) throw new Error(`forwarding on${ns ? ` in ${ns}` : ""}: ${r.stderr.trim()}`);
  }
  const ranges = nodes.map(([, v]) => `${v.first}-${v.first + o.perNode - 1}`).join(", ");
  await nft(
    undefined,
    table(
      hostTable,
      `  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr ${o.address} tcp dport { ${ranges} } dnat to ${svc.pod}\n  }\n` +
        `  chain out {\n    type nat hook output priority -100; policy accept;\n    ip daddr ${o.address} tcp dport { ${ranges} } dnat to ${svc.pod}\n  }\n` +
        `  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n    ip daddr ${svc.pod} oifname "${n.serviceHost}" masquerade\n  }\n`,
    ),
  );
  const map = nodes.flatMap(([, v]) =>
    Array.from({ length: o.perNode }, (_, k) => `${v.first + k} : ${v.infranet} . ${k === 0 ? SSH : v.first + k}`),
  );
  await nft(
    podNs,
    table(
      "mrgnat",
      `  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n    iifname "ceth1" dnat to tcp dport map { ${map.join(", ")} }\n  }\n` +
        `  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname "ibr" ct status dnat masquerade\n  }\n` +
        // Only what was DNAT'd here crosses from the infranet to the host.
        `  chain forward {\n    type filter hook forward priority filter; policy accept;\n    ct status dnat accept\n    iifname "ibr" oifname "ceth1" drop\n  }\n`,
    ),
  );
}
