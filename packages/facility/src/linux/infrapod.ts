/**
 * The infrapod: one network namespace per materialization holding the
 * infranet bridge (`ibr`, the infrapod's infranet address), the service veth
 * to the host (`ceth1`, an address unique per materialization), nex
 * (dnsmasq: DHCP and DNS on the infranet) and foundry (`mrg-foundry`, one
 * process serving each node's configuration).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatIPv4 } from "@merge/xir/ipv4";
import { type Env, ensureMzDir, mzDir } from "./env.ts";
import { namesOf } from "./names.ts";
import { listNetns, pidInNetns, processesIn } from "./processes.ts";
import { type InfranetPlan, infranetBits, infranetRange } from "./record.ts";
import { switchingOnly } from "./switching.ts";
import { vethAdd } from "./veth.ts";

/** 100.64.0.0 (RFC 6598 shared address space: never an experiment's or the host's own). */
const SERVICE_NET = 100 * 2 ** 24 + 64 * 2 ** 16;

/** Service network the host reaches infrapods on: a /30 per materialization out of 100.64.0.0/10. */
export function serviceAddresses(prefix: string): { host: string; pod: string } {
  const idx = Number.parseInt(prefix.slice(2), 16) % 2 ** 20;
  const base = SERVICE_NET + idx * 4;
  return { host: formatIPv4(base + 1), pod: formatIPv4(base + 2) };
}

/**
 * Lines making the infranet bridge `ibr` (the infrapod's, or a host's infranet switch), not yet up. Its MAC
 * is given (random, locally administered): a bridge left to pick its own takes its lowest port's, so a node
 * wired later with a lower one changes it, and the kernel then flushes every neighbour entry of `ibr`,
 * permanent ones too (neigh_changeaddr) — the entries the bridge answers ARP from for its nodes
 * (`proxy_arp_wifi`, container.ts). Nodes on other hosts then never answered the infrapod's ARP.
 */
export function infranetBridge(): string[] {
  const mac = randomBytes(6);
  mac[0] = ((mac[0] as number) & 0xfe) | 0x02;
  const address = [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
  return [
    `link add name ibr address ${address} type bridge`,
    "link set dev ibr type bridge forward_delay 0 stp_state 0",
  ];
}

export async function infrapodCreate(
  env: Env,
  prefix: string,
  infranet: InfranetPlan,
): Promise<{ serviceAddress: string }> {
  const n = namesOf(prefix);
  const bits = infranetBits(infranet);
  const svc = serviceAddresses(prefix);
  await ensureMzDir(env, prefix);
  const host: string[] = [];
  if (!listNetns().includes(n.infrapod)) host.push(`netns add ${n.infrapod}`);
  host.push(
    vethAdd(`name ${n.serviceHost}`, `name ceth1 netns ${n.infrapod}`),
    `addr add ${svc.host}/30 dev ${n.serviceHost}`,
    `link set dev ${n.serviceHost} up`,
  );
  await env.ip.submit(host);
  await switchingOnly(n.infrapod);
  await env
    .ipIn(n.infrapod)
    .submit([
      "link set lo up",
      ...infranetBridge(),
      `addr add ${infranet.gateway}/${bits} dev ibr`,
      "link set dev ibr up",
      `addr add ${svc.pod}/30 dev ceth1`,
      "link set dev ceth1 up",
    ]);
  return { serviceAddress: svc.pod };
}

export interface NexEntry {
  name: string;
  mac: string;
  /** Infranet address. */
  address: string;
  /** Experiment address (what the name resolves to unless resolution is by infranet). */
  experiment?: string;
  /** A node at another facility: its name resolves here, its DHCP is its own facility's. */
  facility?: string;
  /** A VM: its guest takes its hostname from the lease (a container's init sets its own). */
  vm?: boolean;
}

const nexDir = (env: Env, prefix: string) => join(mzDir(env, prefix), "nex");
export const foundryDir = (env: Env, prefix: string): string => join(mzDir(env, prefix), "foundry");

/** Make the DHCP/DNS entries exactly these, and tell a running dnsmasq. */
export function nexEntries(env: Env, prefix: string, entries: NexEntry[], resolution: "experiment" | "infranet"): void {
  const dir = nexDir(env, prefix);
  mkdirSync(dir, { recursive: true });
  const dnsAddress = (e: NexEntry) => (resolution === "infranet" || !e.experiment ? e.address : e.experiment);
  // The lease names the node (VM guests take their hostname from it); dnsmasq wants a plain label there. Not
  // where the name resolves to another address (its experiment address) and no VM needs it: dnsmasq then
  // refuses the lease's name and logs so for every lease each time any lease changes (n² lines, half its CPU at
  // 500 nodes); a container's init sets its hostname itself.
  const leaseName = (e: NexEntry) =>
    /^[A-Za-z0-9-]{1,63}$/.test(e.name) && (e.vm || dnsAddress(e) === e.address) ? `${e.name},` : "";
  const dhcp = entries.filter((e) => !e.facility).map((e) => `${e.mac},${e.address},${leaseName(e)}infinite`);
  const hosts = entries.flatMap((e) => [`${dnsAddress(e)} ${e.name}`, `${e.address} ${e.name}.infranet`]);
  writeFileSync(join(dir, "dhcp-hosts"), `${dhcp.join("\n")}\n`);
  writeFileSync(join(dir, "hosts"), `${hosts.join("\n")}\n`);
  const pid = dnsmasqPid(env, prefix);
  if (pid) process.kill(pid, "SIGHUP");
}

/** dnsmasq's pid from its pid file, checked (its namespace and name), not by a walk of every process: each node set up asks. */
function dnsmasqPid(env: Env, prefix: string): number | undefined {
  const pid = pidInNetns(join(nexDir(env, prefix), "dnsmasq.pid"), namesOf(prefix).infrapod);
  if (pid === undefined) return undefined;
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "dnsmasq" ? pid : undefined;
  } catch {
    return undefined;
  }
}

function foundryRunning(prefix: string): boolean {
  const n = namesOf(prefix);
  return processesIn([n.infrapod]).some((p) => {
    try {
      // busybox httpd: what an older version of this module started (it still serves the same files).
      const cmd = readFileSync(`/proc/${p.pid}/cmdline`, "utf8");
      return cmd.includes("mrg-foundry") || cmd.includes("httpd");
    } catch {
      return false;
    }
  });
}

/** Spawn a daemon inside a namespace; it forks away and the launcher exits. */
function startIn(netns: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn("nsenter", [`--net=/run/netns/${netns}`, "--", ...argv], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    c.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    c.on("error", reject);
    c.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${argv[0]} in ${netns} failed (exit ${code}): ${err.trim()}`)),
    );
  });
}

/** Start nex and foundry when they are not running. */
export async function infrapodServices(
  env: Env,
  prefix: string,
  infranet: InfranetPlan,
): Promise<{ nex: "up" | "down"; foundry: "up" | "down" }> {
  const n = namesOf(prefix);
  const dir = nexDir(env, prefix);
  const fdir = foundryDir(env, prefix);
  mkdirSync(dir, { recursive: true });
  mkdirSync(fdir, { recursive: true });
  for (const f of ["dhcp-hosts", "hosts"]) if (!existsSync(join(dir, f))) writeFileSync(join(dir, f), "");
  const { base, mask } = infranetRange(infranet);
  const conf = [
    "interface=ibr",
    "bind-interfaces",
    "user=root",
    "no-resolv",
    "no-hosts",
    "no-ping",
    "dhcp-authoritative",
    // The native boot (mrg-boot.h) asks for it: the DISCOVER gets the ACK at once, half the exchange.
    "dhcp-rapid-commit",
    "leasefile-ro",
    "quiet-dhcp",
    `dhcp-range=${base},static,${mask},infinite`,
    `dhcp-hostsfile=${join(dir, "dhcp-hosts")}`,
    `addn-hosts=${join(dir, "hosts")}`,
    // Nodes route through the infrapod by default (udhcpc.sh installs it); the model's routes come after.
    `dhcp-option=option:router,${infranet.gateway}`,
    `host-record=foundry,${infranet.gateway}`,
    `host-record=nex,${infranet.gateway}`,
    "dhcp-lease-max=1000000",
    "local-ttl=30",
    `pid-file=${join(dir, "dnsmasq.pid")}`,
    `log-facility=${join(dir, "dnsmasq.log")}`,
  ];
  writeFileSync(join(dir, "dnsmasq.conf"), `${conf.join("\n")}\n`);
  const starts: Promise<void>[] = [];
  if (!dnsmasqPid(env, prefix))
    starts.push(startIn(n.infrapod, ["dnsmasq", `--conf-file=${join(dir, "dnsmasq.conf")}`]));
  if (!foundryRunning(prefix)) starts.push(startIn(n.infrapod, [env.bin.foundry, infranet.gateway, "80", fdir]));
  await Promise.all(starts);
  return { nex: dnsmasqPid(env, prefix) ? "up" : "down", foundry: foundryRunning(prefix) ? "up" : "down" };
}
