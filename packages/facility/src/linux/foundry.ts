/**
 * Foundry: what each node is told when it boots (hostname, interfaces,
 * addresses, routes), as JSON, as the directives a container's native boot
 * applies (`config.txt`, native/mrg-boot.h) and as the shell script a VM's
 * busybox boot runs (`config.sh`). Files under the materialization's foundry directory, served
 * inside the infrapod by busybox httpd on the infranet at `http://foundry/`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE_BUSYBOX } from "./image.ts";
import { socketIfname } from "./names.ts";
import type { NodePlan } from "./record.ts";

export interface NodeConfig {
  hostname: string;
  interfaces: { name: string; socket: number; addrs: string[] }[];
  routes: { dest: string; gateway: string; dev: string }[];
  /** Route between its interfaces (a node on a routed path). */
  forwarding: boolean;
}

export function nodeConfig(node: NodePlan): NodeConfig {
  return {
    hostname: node.name,
    interfaces: node.interfaces.map((i) => ({ name: socketIfname(i.socket), socket: i.socket, addrs: i.addrs })),
    routes: node.routes.map((r) => ({ dest: r.dest, gateway: r.gateway, dev: socketIfname(r.socket) })),
    forwarding: node.interfaces.length > 1,
  };
}

const SAFE = /^[A-Za-z0-9_.:/-]+$/;
function q(s: string): string {
  if (!SAFE.test(s)) throw new Error(`unsafe value in node configuration: ${JSON.stringify(s)}`);
  return s;
}

/**
 * The configuration as a script for the node's busybox shell (the boot
 * sources it in a subshell); idempotent (a reboot runs it again). Builtins
 * where they do the job (every node runs this at once at materialize, and a
 * process costs milliseconds): the hostname through /proc, interfaces
 * awaited through /sys (the node's own sysfs), addresses replaced, not
 * flushed and added (a powered-off node's addresses were flushed already).
 */
export function configScript(c: NodeConfig): string {
  const B = IMAGE_BUSYBOX;
  const lines = ["set -e", `B=${B}`, `echo ${q(c.hostname)} > /proc/sys/kernel/hostname`];
  for (const i of c.interfaces) {
    // Links may be plumbed after the node boots; wait for them (up to 60 s).
    lines.push(
      `n=0; until [ -e /sys/class/net/${q(i.name)} ]; do n=$((n+1)); [ $n -lt 600 ] || { echo "interface ${i.name} never appeared"; exit 1; }; $B usleep 100000; done`,
      ...i.addrs.map((a) => `$B ip addr replace ${q(a)} dev ${q(i.name)}`),
      `$B ip link set ${q(i.name)} up`,
    );
  }
  lines.push(`echo ${c.forwarding ? 1 : 0} > /proc/sys/net/ipv4/ip_forward`);
  for (const r of c.routes) lines.push(`$B ip route replace ${q(r.dest)} via ${q(r.gateway)} dev ${q(r.dev)}`);
  lines.push(...configExtra(c));
  return `${lines.join("\n")}\n`;
}

/**
 * Shell lines for what the directives do not cover (accounts, keys, ...),
 * run after the network is configured, by both boots: the end of config.sh
 * and the `script` section of config.txt. None yet.
 */
export function configExtra(_c: NodeConfig): string[] {
  return [];
}

/**
 * The configuration as directives for a container's native boot (mrg-boot.h;
 * no process a node): `hostname`, `wait IF` (up to 60 s: links may be plumbed
 * after the node boots), `addr IF CIDR` (replaced), `up IF`, `forward 0|1`,
 * `route DEST GATEWAY IF` (replaced), and `script` followed by shell lines
 * (configExtra) when there are any.
 */
export function configText(c: NodeConfig): string {
  const lines = [`hostname ${q(c.hostname)}`];
  for (const i of c.interfaces) {
    lines.push(`wait ${q(i.name)}`, ...i.addrs.map((a) => `addr ${q(i.name)} ${q(a)}`), `up ${q(i.name)}`);
  }
  lines.push(`forward ${c.forwarding ? 1 : 0}`);
  for (const r of c.routes) lines.push(`route ${q(r.dest)} ${q(r.gateway)} ${q(r.dev)}`);
  const extra = configExtra(c);
  if (extra.length) lines.push("script", "set -e", `B=${IMAGE_BUSYBOX}`, ...extra);
  return `${lines.join("\n")}\n`;
}

export function writeNodeConfig(foundryDir: string, node: NodePlan): void {
  const dir = join(foundryDir, node.name);
  mkdirSync(dir, { recursive: true });
  const c = nodeConfig(node);
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(c, null, 2)}\n`);
  writeFileSync(join(dir, "config.sh"), configScript(c));
  writeFileSync(join(dir, "config.txt"), configText(c));
}
