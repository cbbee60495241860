/**
 * What this host gives the data plane, found by trying (in a scratch namespace
 * that is removed afterwards), not assumed. `requireCapabilities` names what
 * is missing; `describeCapabilities` says what mechanism is used instead.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { run } from "./command.ts";

export interface Capabilities {
  root: boolean;
  netns: boolean;
  veth: boolean;
  bridge: boolean;
  /** `tc qdisc netem`: latency/loss in the kernel. */
  netem: boolean;
  tbf: boolean;
  /** 802.1Q sub-interfaces. */
  vlan: boolean;
  vxlan: boolean;
  overlayfs: boolean;
  /** Controllers usable for node limits, and where they live. */
  cgroup: { version: 1 | 2 | null; cpu: string | null; memory: string | null };
  dnsmasq: string | null;
  busybox: string | null;
  gcc: string | null;
  iperf3: string | null;
  debootstrap: string | null;
}

async function which(cmd: string): Promise<string | null> {
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin", "/usr/local/sbin"]) {
    if (existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return null;
}

function cgroups(): Capabilities["cgroup"] {
  const unified = ["/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/unified/cgroup.controllers"];
  for (const f of unified) {
    if (!existsSync(f)) continue;
    const ctl = readFileSync(f, "utf8").split(/\s+/);
    const base = f.replace(/\/cgroup\.controllers$/, "");
    if (ctl.includes("cpu") || ctl.includes("memory")) {
      return { version: 2, cpu: ctl.includes("cpu") ? base : null, memory: ctl.includes("memory") ? base : null };
    }
  }
  const cpu = existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") ? "/sys/fs/cgroup/cpu" : null;
  const memory = existsSync("/sys/fs/cgroup/memory/memory.limit_in_bytes") ? "/sys/fs/cgroup/memory" : null;
  return { version: cpu || memory ? 1 : null, cpu, memory };
}

export async function detectCapabilities(): Promise<Capabilities> {
  const root = process.getuid?.() === 0;
  const fs = readFileSync("/proc/filesystems", "utf8");
  const caps: Capabilities = {
    root,
    netns: false,
    veth: false,
    bridge: false,
    netem: false,
    tbf: false,
    vlan: false,
    vxlan: false,
    overlayfs: /\boverlay\b/.test(fs),
    cgroup: cgroups(),
    dnsmasq: await which("dnsmasq"),
    busybox: await which("busybox"),
    gcc: await which("gcc"),
    iperf3: await which("iperf3"),
    debootstrap: await which("debootstrap"),
  };
  if (!root) return caps;
  const ns = `mgcap${randomBytes(3).toString("hex")}`;
  const ip = (args: string[]) => run("ip", ["-n", ns, ...args]);
  const tc = (args: string[]) => run("tc", ["-n", ns, ...args]);
  if ((await run("ip", ["netns", "add", ns])).code !== 0) return caps;
  try {
    caps.netns = true;
    caps.veth = (await ip(["link", "add", "name", "a", "type", "veth", "peer", "name", "b"])).code === 0;
    caps.bridge = (await ip(["link", "add", "name", "br", "type", "bridge"])).code === 0;
    caps.vxlan =
      (await ip(["link", "add", "name", "vx", "type", "vxlan", "id", "42", "dstport", "4789", "local", "127.0.0.1"]))
        .code === 0;
    if (caps.veth) {
      caps.vlan = (await ip(["link", "add", "link", "a", "name", "a.5", "type", "vlan", "id", "5"])).code === 0;
      caps.netem = (await tc(["qdisc", "add", "dev", "a", "root", "netem", "delay", "1ms"])).code === 0;
      caps.tbf =
        (await tc(["qdisc", "replace", "dev", "b", "root", "tbf", "rate", "1mbit", "burst", "10k", "latency", "50ms"]))
          .code === 0;
    }
  } finally {
    await run("ip", ["netns", "del", ns]);
  }
  return caps;
}

/** The mechanisms chosen for these capabilities, one line each, for operators. */
export function describeCapabilities(c: Capabilities): string[] {
  const yes = (b: unknown) => (b ? "yes" : "NO");
  return [
    `root: ${yes(c.root)}; network namespaces: ${yes(c.netns)}; veth: ${yes(c.veth)}; bridges: ${yes(c.bridge)}; overlayfs: ${yes(c.overlayfs)}`,
    c.netem
      ? "emulation: netem (kernel) for latency and loss, tbf for capacity"
      : `emulation: netem MISSING -> mrg-emu (userspace AF_PACKET delay line with loss, per direction) + ${c.tbf ? "tbf" : "NO tbf: capacity not emulated"} for capacity`,
    c.vlan
      ? "802.1Q sub-interfaces: yes (unused: links are veth pairs on one host)"
      : "802.1Q sub-interfaces: MISSING -> not needed on one host: each link is its own veth pair/bridge, isolated by namespace",
    `vxlan: ${yes(c.vxlan)} (for multi-host infranets; one host uses a bridge in the infrapod)`,
    c.cgroup.version
      ? `node limits: cgroup v${c.cgroup.version} (cpu: ${c.cgroup.cpu ?? "MISSING, cores not limited"}, memory: ${c.cgroup.memory ?? "MISSING, memory not limited"})`
      : "node limits: NO usable cgroup controllers -> cores and memory are not enforced",
    `dnsmasq: ${c.dnsmasq ?? "MISSING"}; busybox: ${c.busybox ?? "MISSING"}; gcc: ${c.gcc ?? "MISSING"}; iperf3: ${c.iperf3 ?? "missing (tests only)"}; debootstrap: ${c.debootstrap ?? "missing (Debian images unavailable)"}`,
  ];
}

/** Throw one error listing everything required that is missing. */
export function requireCapabilities(c: Capabilities): void {
  const missing: string[] = [];
  if (!c.root) missing.push("root privileges (run as root)");
  if (!c.netns) missing.push("network namespaces (`ip netns add` failed)");
  if (!c.veth) missing.push("veth interfaces (kernel module veth)");
  if (!c.bridge) missing.push("Linux bridges (kernel module bridge)");
  if (!c.overlayfs) missing.push("overlayfs (kernel module overlay)");
  if (!c.dnsmasq) missing.push("dnsmasq (Debian package dnsmasq-base)");
  if (!c.busybox) missing.push("busybox (Debian package busybox-static)");
  if (!c.netem && !c.gcc) missing.push("netem or gcc (to build the mrg-emu fallback emulator)");
  if (!c.gcc) missing.push("gcc (to build the mrg-node container starter from packages/facility/native)");
  if (missing.length > 0) throw new Error(`the linux backend cannot run here; missing: ${missing.join("; ")}`);
}
