/**
 * VM nodes on the linux data plane. A VM node is a QEMU process (KVM when
 * /dev/kvm exists, TCG otherwise) running inside the node's network namespace,
 * in its own cgroup, booted from the guest image (vm-image.ts). The namespace
 * is wired exactly as a container node's (infranet veth `eth0`, experiment
 * veths `eth<socket+1>` on the same links and emulators), and inside it the
 * hypervisor side joins each veth to one tap of the requested NIC model
 * through a bridge of its own: a filtering bridge with two ports, forwarding
 * only frames from the guest's MAC on that NIC, so a VM never talks past its
 * links. Power goes through QMP; `exec` and the shell through the guest agent
 * on virtio-serial ports (native/mrg-agent.c, host end vm-agent-wire.mjs). Everything lives under the node's directory and
 * namespace, so the materialization's sweep removes it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "./command.ts";
import { nodeDir } from "./container.ts";
import {
  cpuSeconds,
  type DilationProfile,
  dilationRefusal,
  dilationShift,
  type GovernOptions,
  govern,
  governRun,
  knownRate,
} from "./dilation.ts";
import type { Env } from "./env.ts";
import { foundryDir } from "./infrapod.ts";
import { macOf, namesOf, socketIfname } from "./names.ts";
import { alive, pidInNetns } from "./processes.ts";
import { qmp } from "./qmp.ts";
import { cpuCapOf, type NodePlan } from "./record.ts";
import { nodeStorageBinds } from "./storage.ts";
import { LAN_BRIDGE, switchingOnly } from "./switching.ts";
import { AGENT_PORTS, frame, session } from "./vm-agent-wire.mjs";
import { type GuestImage, guestImage } from "./vm-image.ts";
import { vmQemuCommand } from "./vm-storage.ts";

/** QEMU's device for each NIC model a VM may be given (`KIND_NIC_MODELS.vm`). */
export const QEMU_NIC: Readonly<Record<string, string>> = {
  virtio: "virtio-net-pci",
  e1000: "e1000",
  e1000e: "e1000e",
  rtl8139: "rtl8139",
};
/** The Linux driver the guest binds to each model (what `/sys/class/net/eth*\/device/driver` shows). */
export const GUEST_DRIVER: Readonly<Record<string, string>> = {
  virtio: "virtio_net",
  e1000: "e1000",
  e1000e: "e1000e",
  rtl8139: "8139cp",
};

/** MiB QEMU itself needs beyond the guest's memory (TCG's translation cache, device state). */
export const QEMU_OVERHEAD_MIB = 192;
const DEFAULT_MEMORY = 256 * 2 ** 20;

export interface VmNic {
  /** The veth in the node's namespace this NIC is joined to (`eth0` infranet, `eth<socket+1>`). */
  ifname: string;
  /** The guest NIC's MAC (the infranet's is the one DHCP knows). */
  mac: string;
  model: string;
}

/** The profile a VM got, as recorded in the node's status. */
export interface VmProfile {
  accel: "kvm" | "tcg";
  cores: number;
  memoryMiB: number;
  /** Host CPU bandwidth in cores (the cgroup quota per period), absent when not capped. */
  cpuCap?: number;
  nics: { ifname: string; model: string }[];
  /** QEMU's `-icount shift` when the VM is dilated (set at boot). */
  icount?: number;
  /** The time dilation asked and achieved, once governed (dilation.ts). */
  dilation?: DilationProfile;
}

export const vmDir = (env: Env, prefix: string, node: string): string => join(nodeDir(env, prefix, node), "vm");

/** The agent ports' sockets and locks (stale ones go before QEMU starts). */
const agentFiles = (): string[] =>
  Array.from({ length: AGENT_PORTS }, (_, i) => [`agent-${i}.sock`, `agent-${i}.lock`]).flat();

/** The NICs of a VM node: infranet (virtio) first, then each socket's, with the model the realization chose (virtio by default). */
export function vmNics(node: NodePlan): VmNic[] {
  const models = node.vm?.nics ?? {};
  return [
    { ifname: "eth0", mac: node.infranet.mac, model: "virtio" },
    ...[...node.interfaces]
      .sort((a, b) => a.socket - b.socket)
      .map((i) => ({
        ifname: socketIfname(i.socket),
        mac: macOf(`${node.name}/${i.socket}/vm`),
        model: models[i.socket] ?? "virtio",
      })),
  ];
}

/**
 * Hypervisor-side plumbing in the node's namespace: per NIC a tap and a
 * two-port bridge joining it to its veth; nftables lets frames in from the tap
 * only with the guest's own MAC on that NIC (idempotent).
 */
export async function vmWire(env: Env, prefix: string, node: NodePlan): Promise<void> {
  const ns = namesOf(prefix).node(node.name);
  // The namespace only switches the guest's frames: nothing of its own on the guest's links.
  await switchingOnly(ns);
  const nics = vmNics(node);
  const lines: string[] = [];
  nics.forEach((n, i) => {
    lines.push(
      `tuntap add dev t${i} mode tap`,
      `link add name b${i} type bridge ${LAN_BRIDGE}`,
      `link set dev b${i} type bridge stp_state 0 forward_delay 0`,
      // The veth carried the node's infranet MAC for a container; the guest's NIC has it now, and a
      // bridge port with the guest's address would take the guest's frames for its own.
      `link set dev ${n.ifname} down`,
      `link set dev ${n.ifname} address ${macOf(`${prefix}/${node.name}/${n.ifname}/host`)}`,
      `link set dev ${n.ifname} master b${i} up`,
      `link set dev t${i} master b${i} up`,
      `link set dev b${i} up`,
    );
  });
  await env.ipIn(ns).submit(lines, { tolerant: true });
  const rules = nics.map((n, i) => `iifname "t${i}" ether saddr != ${n.mac} drop`).join("\n    ");
  const nft = `table bridge mrgvm\ndelete table bridge mrgvm\ntable bridge mrgvm {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n    ${rules}\n  }\n}\n`;
  const r = await run("ip", ["netns", "exec", ns, "nft", "-f", "-"], nft);
  if (r.code !== 0) throw new Error(`VM ${node.name}: filtering bridge rules: ${r.stderr.trim()}`);
}

/** The QEMU process of a running VM node (checked to be in the node's namespace). */
export function vmPid(env: Env, prefix: string, node: string): number | undefined {
  return pidInNetns(join(vmDir(env, prefix, node), "qemu.pid"), namesOf(prefix).node(node));
}

export function accel(): "kvm" | "tcg" {
  return existsSync("/dev/kvm") ? "kvm" : "tcg";
}

/**
 * QEMU arguments and kernel parameters of a dilated VM: instruction counting
 * at the shift chosen from the host's known rate (no real-time catch-up while
 * idle: sleep=off), the RTC on the guest's clock, and a guest that idles by
 * polling so its clock always runs on instructions. Throws, naming the
 * achievable range, when the host cannot give the dilation.
 */
function dilationArgs(env: Env, node: NodePlan): { args: string[]; append: string; shift: number } | undefined {
  const asked = node.vm?.clockDilation;
  if (!asked) return undefined;
  const rate0 = knownRate(env.dataDir);
  const refusal = dilationRefusal(asked, rate0);
  if (refusal) throw new Error(`VM ${node.name}: ${refusal}`);
  const shift = dilationShift(asked, rate0);
  return { args: ["-icount", `shift=${shift},sleep=off`, "-rtc", "clock=vm"], append: " idle=poll", shift };
}

/**
 * Boot a VM node (no-op when running): QEMU in the node's namespace,
 * daemonized, its pid in a cgroup of its own (`<prefix>-<node>`) whose CPU
 * quota is the realized cores (or `cpuCap`) and whose memory limit is the
 * guest's plus QEMU's overhead.
 */
export async function vmStart(env: Env, prefix: string, node: NodePlan, image?: GuestImage): Promise<VmProfile> {
  const dir = vmDir(env, prefix, node.name);
  const profile = vmProfile(node);
  if (vmPid(env, prefix, node.name)) return profile;
  const dilated = dilationArgs(env, node);
  const img = image ?? (await guestImage(env.dataDir));
  mkdirSync(dir, { recursive: true });
  for (const f of ["qemu.pid", "qmp.sock", ...agentFiles()]) rmSync(join(dir, f), { force: true });
  const nics = vmNics(node);
  const args = [
    "-name",
    `${prefix}-${node.name}`,
    "-machine",
    "pc",
    "-accel",
    profile.accel,
    "-smp",
    String(profile.cores),
    "-m",
    `${profile.memoryMiB}M`,
    "-kernel",
    img.kernel,
    "-initrd",
    img.initrd,
    "-append",
    `console=ttyS0 quiet panic=-1 mrg.if=${nics.map((n) => `${n.ifname}/${n.mac}`).join(",")}${dilated?.append ?? ""}`,
    "-display",
    "none",
    "-nodefaults",
    "-no-user-config",
    "-serial",
    `file:${join(dir, "console.log")}`,
    "-qmp",
    `unix:${join(dir, "qmp.sock")},server=on,wait=off`,
    "-device",
    "virtio-serial-pci",
    // One agent port per session at once (vm-agent-wire.mjs takes a free one).
    ...Array.from({ length: AGENT_PORTS }, (_, i) => [
      "-chardev",
      `socket,id=agent${i},path=${join(dir, `agent-${i}.sock`)},server=on,wait=off`,
      "-device",
      `virtserialport,chardev=agent${i},name=org.merge.agent.${i}`,
    ]).flat(),
    "-pidfile",
    join(dir, "qemu.pid"),
    "-daemonize",
    ...(dilated?.args ?? []),
  ];
  if (dilated) profile.icount = dilated.shift;
  nics.forEach((n, i) => {
    const dev = QEMU_NIC[n.model];
    if (!dev)
      throw new Error(
        `VM ${node.name}: NIC model ${n.model} is not one QEMU gives (${Object.keys(QEMU_NIC).join(", ")})`,
      );
    args.push(
      "-netdev",
      `tap,id=n${i},ifname=t${i},script=no,downscript=no`,
      "-device",
      `${dev},netdev=n${i},mac=${n.mac}`,
    );
  });
  const ns = namesOf(prefix).node(node.name);
  // The members' homes and the project directory over virtio-9p, when this host has the portal's storage.
  const share = join(dir, "storage");
  mkdirSync(share, { recursive: true });
  const binds = nodeStorageBinds(env.storage, foundryDir(env, prefix));
  const r = await run("ip", ["netns", "exec", ns, ...vmQemuCommand(share, binds, args)]);
  if (r.code !== 0)
    throw new Error(`VM ${node.name}: qemu-system-x86_64 failed: ${r.stderr.trim() || r.stdout.trim()}`);
  const pid = vmPid(env, prefix, node.name);
  if (!pid) throw new Error(`VM ${node.name}: QEMU did not stay up (see ${join(dir, "console.log")})`);
  confine(env, prefix, node.name, pid, profile);
  writeFileSync(join(dir, "profile.json"), `${JSON.stringify(profile)}\n`);
  return profile;
}

/**
 * What the VM boots with: cores and memory as realized, a CPU cap of its
 * cores, the NIC models; instruction counting needs TCG, so a dilated VM
 * never runs under KVM. `vmSettle` gives it the rest of its profile once booted.
 */
export function vmProfile(node: NodePlan): VmProfile {
  const cores = Math.max(1, Math.round(node.cores ?? 1));
  const memoryMiB = Math.max(128, Math.round((node.memory ?? DEFAULT_MEMORY) / 2 ** 20));
  return {
    accel: node.vm?.clockDilation ? "tcg" : accel(),
    cores,
    memoryMiB,
    cpuCap: cores,
    nics: vmNics(node).map((n) => ({ ifname: n.ifname, model: n.model })),
  };
}

/**
 * A booted VM gets its profile: the CPU cap the model asked (`cpu.share` ×
 * cores), or for a dilated VM the cap calibration finds for its dilation.
 * Booting at the full cores first costs a profile no boot time (a boot at a
 * tenth of a core under TCG takes minutes). Returns the profile recorded.
 */
export async function vmSettle(
  env: Env,
  prefix: string,
  node: NodePlan,
  opts: { settleMs?: number; windowMs?: number } = {},
): Promise<VmProfile> {
  const pid = vmPid(env, prefix, node.name);
  const boot = vmProfileOf(env, prefix, node.name);
  if (!pid || !boot) throw new Error(`VM ${node.name} is not running`);
  const asked = node.vm?.clockDilation;
  let profile: VmProfile = { ...boot, cpuCap: cpuCapOf(node) ?? boot.cores };
  if (asked && boot.icount !== undefined) {
    const dilation = await govern({
      ...governOptions(env, prefix, node, pid, asked, boot.icount, () => profile),
      settleMs: opts.settleMs ?? 10_000,
      windowMs: opts.windowMs ?? 10_000,
    });
    profile = { ...profile, cpuCap: dilation.cap, dilation };
  } else confine(env, prefix, node.name, pid, profile);
  writeFileSync(join(vmDir(env, prefix, node.name), "profile.json"), `${JSON.stringify(profile)}\n`);
  return profile;
}

/** What the governor of a dilated VM reads (QEMU's instruction count and CPU time) and sets (its cgroup's quota). */
function governOptions(
  env: Env,
  prefix: string,
  node: NodePlan,
  pid: number,
  asked: number,
  shift: number,
  profile: () => VmProfile,
): GovernOptions {
  const sock = join(vmDir(env, prefix, node.name), "qmp.sock");
  stopGovernor(sock);
  return {
    asked,
    shift,
    dataDir: env.dataDir,
    stepMs: 500,
    read: async () => {
      const c0 = cpuSeconds(pid);
      const t0 = Date.now();
      const r = (await qmp(sock, "query-replay", undefined, 5000)) as { icount?: number };
      const t1 = Date.now();
      if (typeof r.icount !== "number") throw new Error(`VM ${node.name}: QEMU reports no instruction count`);
      const guest = (r.icount * 2 ** shift) / 1e9;
      return { guest, wall: (t0 + t1) / 2000, cpu: (c0 + cpuSeconds(pid)) / 2, rt: t1 - t0 };
    },
    setCap: (cap) => {
      if (alive(pid)) confine(env, prefix, node.name, pid, { ...profile(), cpuCap: cap });
    },
    // Steps run as long as this QEMU process does (stopped with it: vmStop, or when it is gone).
    every: (step, ms) => {
      const t = setInterval(() => {
        if (!alive(pid)) return stopGovernor(sock);
        step().catch(() => {});
      }, ms);
      t.unref();
      governors.set(sock, t);
    },
  };
}

/**
 * Govern a running dilated VM again (the facility process restarted: the
 * governor lived in the old one, and the VM kept its last quota). Starts from
 * its cap now; its recorded profile stays what setup measured. True when a
 * governor now runs.
 */
export async function vmGovern(env: Env, prefix: string, node: NodePlan): Promise<boolean> {
  const pid = vmPid(env, prefix, node.name);
  const p = vmProfileOf(env, prefix, node.name);
  const asked = node.vm?.clockDilation;
  if (!pid || !p || !asked || p.icount === undefined) return false;
  if (vmGoverned(env, prefix, node.name)) return true;
  await governRun(
    governOptions(env, prefix, node, pid, asked, p.icount, () => p),
    p.cpuCap ?? 0.25,
  );
  return true;
}

/** Whether this process governs the VM's clock. */
export function vmGoverned(env: Env, prefix: string, node: string): boolean {
  return governors.has(join(vmDir(env, prefix, node), "qmp.sock"));
}

/** Stop governing the VM (as a facility process that ends does). */
export function vmUngovern(env: Env, prefix: string, node: string): void {
  stopGovernor(join(vmDir(env, prefix, node), "qmp.sock"));
}

/** The running dilation governors, by QMP socket (one per dilated VM this process started). */
const governors = new Map<string, ReturnType<typeof setInterval>>();

function stopGovernor(sock: string): void {
  const t = governors.get(sock);
  if (t) clearInterval(t);
  governors.delete(sock);
}

/** Wait until the VM is configured, then give it its profile (`vmSettle`). */
export async function vmReady(
  env: Env,
  prefix: string,
  node: NodePlan,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<VmProfile> {
  await vmWaitReady(env, prefix, node.name, timeoutMs, signal);
  return vmSettle(env, prefix, node);
}

/**
 * The QEMU process's cgroup: CPU quota = cap × the 100 ms period (a VM of 2
 * cores never takes more than 2 host cores; a cap of 0.25 a quarter of one),
 * memory = guest memory + QEMU_OVERHEAD_MIB.
 */
function confine(env: Env, prefix: string, node: string, pid: number, profile: VmProfile): void {
  const cg = env.caps.cgroup;
  const name = `${prefix}-${node}`;
  try {
    if (profile.cpuCap && cg.cpu) {
      const dir = join(cg.cpu, name);
      mkdirSync(dir, { recursive: true });
      const quota = String(Math.round(profile.cpuCap * 100_000));
      if (cg.version === 1) {
        writeFileSync(join(dir, "cpu.cfs_period_us"), "100000");
        writeFileSync(join(dir, "cpu.cfs_quota_us"), quota);
      } else writeFileSync(join(dir, "cpu.max"), `${quota} 100000`);
      writeFileSync(join(dir, "cgroup.procs"), String(pid));
    }
    if (cg.memory) {
      const dir = join(cg.memory, name);
      mkdirSync(dir, { recursive: true });
      const limit = String((profile.memoryMiB + QEMU_OVERHEAD_MIB) * 2 ** 20);
      writeFileSync(join(dir, cg.version === 1 ? "memory.limit_in_bytes" : "memory.max"), limit);
      writeFileSync(join(dir, "cgroup.procs"), String(pid));
    }
  } catch (e) {
    env.log(`VM ${node}: limits not applied (${(e as Error).message})`);
  }
}

/** The profile recorded when the VM started (absent when it never did). */
export function vmProfileOf(env: Env, prefix: string, node: string): VmProfile | undefined {
  try {
    return JSON.parse(readFileSync(join(vmDir(env, prefix, node), "profile.json"), "utf8")) as VmProfile;
  } catch {
    return undefined;
  }
}

/** Stop the VM: QMP `quit`, then SIGKILL if it lingers. */
export async function vmStop(env: Env, prefix: string, node: string): Promise<void> {
  stopGovernor(join(vmDir(env, prefix, node), "qmp.sock"));
  const pid = vmPid(env, prefix, node);
  if (!pid) return;
  try {
    await qmp(join(vmDir(env, prefix, node), "qmp.sock"), "quit", undefined, 3000);
  } catch {}
  const end = Date.now() + 3000;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
    while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
  }
}

/** Hard reset through QMP (the guest reboots from its image: its root is in RAM). */
export async function vmReset(env: Env, prefix: string, node: string): Promise<void> {
  if (!vmPid(env, prefix, node)) throw new Error(`VM ${node} is not running (power it on first)`);
  await qmp(join(vmDir(env, prefix, node), "qmp.sock"), "system_reset");
}

/**
 * Run a shell script in the guest through its agent; output is stdout and
 * stderr together, in the order they came. `stdin` is the script's whole
 * input (none: its end at once).
 */
export async function vmRun(
  env: Env,
  prefix: string,
  node: string,
  script: string,
  opts: { stdin?: Buffer; timeoutMs?: number } = {},
): Promise<{ code: number; output: Buffer }> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const out: Buffer[] = [];
  let settle: (e: Error | undefined, code?: number) => void = () => {};
  const result = new Promise<{ code: number; output: Buffer }>((resolve, reject) => {
    settle = (e, code) => (e ? reject(e) : resolve({ code: code ?? 255, output: Buffer.concat(out) }));
  });
  // The timer may end it while the session is still being opened, before the caller awaits it: not unhandled.
  result.catch(() => {});
  let ended = false;
  const end = (e: Error | undefined, code?: number) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    c?.destroy();
    settle(e, code);
  };
  const timer = setTimeout(
    () => end(new Error(`guest agent of VM ${node}${c ? `, port ${c.port}` : ""}: no answer in ${timeoutMs} ms`)),
    timeoutMs,
  );
  let c: Awaited<ReturnType<typeof session>> | undefined;
  try {
    c = await session(vmDir(env, prefix, node), {
      script,
      waitMs: timeoutMs,
      onFrame: (f) => {
        if (f.type === "1" || f.type === "2") out.push(f.payload);
        else if (f.type === "Q") end(undefined, f.payload.readInt32BE(0));
        else if (f.type === "X") end(new Error(`guest agent: ${f.payload.toString()}`));
      },
      onError: (e) => end(new Error(`guest agent: ${e.message}`)),
      onClose: () => end(new Error("guest agent: the session ended without an exit status")),
    });
    if (ended) c.destroy();
    else {
      if (opts.stdin?.length) c.write(frame("I", opts.stdin));
      c.write(frame("E"));
    }
  } catch (e) {
    end(e as Error);
  }
  return result;
}

export type VmBoot = "ready" | "failed" | "booting";

/**
 * The guest's boot state as the merge boot left it. One request waits as long
 * as `timeoutMs` (the agent answers once the guest has booted); a probe that
 * times out hangs up, and the agent drops what it had sent.
 */
export async function vmBoot(
  env: Env,
  prefix: string,
  node: string,
  timeoutMs: number,
): Promise<{ state: VmBoot; reason?: string }> {
  try {
    const r = await vmRun(
      env,
      prefix,
      node,
      "if [ -f /etc/mrg/ready ]; then echo ready; elif [ -f /etc/mrg/failed ]; then echo failed; cat /etc/mrg/failed; else echo booting; fi",
      { timeoutMs },
    );
    const [state, ...rest] = r.output.toString().trim().split("\n");
    if (state === "ready" || state === "failed") return { state, reason: rest.join(" ") || undefined };
    return { state: "booting" };
  } catch {
    return { state: "booting" };
  }
}

/** Wait until the VM's merge boot is done (TCG boots take tens of seconds on a shared host). */
export async function vmWaitReady(
  env: Env,
  prefix: string,
  node: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (!vmPid(env, prefix, node)) throw new Error(`VM ${node}: QEMU is not running (see its console.log)`);
    // One probe waits up to 30 s, then a new one (a new connection) goes: what a probe sent while the
    // guest reset can be lost with the old guest's port, and a probe left waiting would wait for ever.
    const b = await vmBoot(env, prefix, node, Math.min(30_000, Math.max(1000, end - Date.now())));
    if (b.state === "ready") return;
    if (b.state === "failed") {
      // What the guest's boot said last, for the operator (the guest's files are out of the host's reach).
      const log = await vmRun(env, prefix, node, "echo hostname $(hostname); tail -n 5 /var/log/mrg-boot.log", {
        timeoutMs: 30_000,
      }).then(
        (r) =>
          r.output
            .toString()
            .trim()
            .replace(/\s*\n\s*/g, " | "),
        () => "",
      );
      throw new Error(
        `VM ${node} failed to configure: ${b.reason ?? "no reason given"}${log ? ` (guest: ${log})` : ""}`,
      );
    }
    if (Date.now() > end) throw new Error(`VM ${node} not configured after ${timeoutMs} ms (accel ${accel()})`);
    if (signal?.aborted) throw new Error("aborted while waiting for VM");
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Shell words for a script line. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/**
 * `exec` on a VM node: a small host process (vm-agent-client.mjs) holds one
 * agent session, so the caller gets a real child: stdin streams to the
 * command as it comes (its end is the command's), stdout and stderr are the
 * guest's, the exit status is the command's. With `tty` the command runs on a
 * pty in the guest (job control, window size: write `<rows> <cols>\n` to
 * the child's fd 3).
 */
export function vmExec(
  env: Env,
  prefix: string,
  node: string,
  argv: string[],
  opts: { tty?: { rows: number; cols: number } } = {},
): ChildProcess {
  if (!vmPid(env, prefix, node)) throw new Error(`node ${node} is not running (power it on first)`);
  const client = fileURLToPath(new URL("./vm-agent-client.mjs", import.meta.url));
  const script = Buffer.from(opts.tty ? `exec ${shellQuote(argv)}` : shellQuote(argv)).toString("base64");
  const tty = opts.tty ? ["tty", String(opts.tty.rows), String(opts.tty.cols)] : [];
  const child = spawn(process.execPath, [client, vmDir(env, prefix, node), script, ...tty], {
    stdio: opts.tty ? ["pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe"],
  });
  (child.stdio[3] as NodeJS.WritableStream | null | undefined)?.on("error", () => {});
  return child;
}

/** Wait until the node's namespace holds the veth of every socket (links are wired beside node setup). */
export async function vmInterfaces(ns: string, node: NodePlan, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const want = node.interfaces.map((i) => socketIfname(i.socket));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await run("ip", ["-n", ns, "-o", "link", "show"]);
    const have = new Set(r.stdout.split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]));
    const missing = want.filter((w) => !have.has(w));
    if (missing.length === 0) return;
    if (Date.now() > end) throw new Error(`VM ${node.name}: its links never arrived (${missing.join(", ")} missing)`);
    if (signal?.aborted) throw new Error("aborted while waiting for the VM's links");
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Stop a VM node and remove its cgroups and files (its namespace goes with the node). */
export async function vmRemove(env: Env, prefix: string, node: string): Promise<void> {
  await vmStop(env, prefix, node);
  const cg = env.caps.cgroup;
  for (const root of new Set([cg.cpu, cg.memory])) {
    if (!root) continue;
    try {
      rmdirSync(join(root, `${prefix}-${node}`));
    } catch {}
  }
  rmSync(vmDir(env, prefix, node), { recursive: true, force: true });
}

/** Change a running VM's CPU cap (cores of host CPU bandwidth) and record it in its profile. */
export function vmCap(env: Env, prefix: string, node: string, cap: number): VmProfile {
  const pid = vmPid(env, prefix, node);
  const profile = vmProfileOf(env, prefix, node);
  if (!pid || !profile) throw new Error(`VM ${node} is not running`);
  if (!(cap > 0)) throw new Error(`VM ${node}: a CPU cap is a number of cores above 0, e.g. 0.5`);
  if (!env.caps.cgroup.cpu) throw new Error(`VM ${node}: this host has no cgroup cpu controller to cap with`);
  const next = { ...profile, cpuCap: cap };
  confine(env, prefix, node, pid, next);
  writeFileSync(join(vmDir(env, prefix, node), "profile.json"), `${JSON.stringify(next)}\n`);
  return next;
}
