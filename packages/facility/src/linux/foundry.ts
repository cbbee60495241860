/**
 * Foundry: what each node is told when it boots (hostname, interfaces,
 * addresses, routes), as JSON, as the directives a container's native boot
 * applies (`config.txt`, native/mrg-boot.h) and as the shell script a VM's
 * busybox boot runs (`config.sh`). Files under the materialization's foundry directory, served
 * inside the infrapod by busybox httpd on the infranet at `http://foundry/`.
 * The project's members, the same for every node, are one more file
 * (`accounts.sh`) each node's configuration fetches and runs after its own.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeAccounts } from "@merge/materialize";
import { IMAGE_BUSYBOX } from "./image.ts";
import { socketIfname } from "./names.ts";
import type { NodePlan } from "./record.ts";
import { saveAccounts } from "./storage.ts";

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
  // The members' accounts (and sshd), when the materialization has them ($server: the foundry, from the boot).
  lines.push(
    'if $B timeout 5 $B wget -q -O /etc/mrg/accounts.sh "http://$server/accounts.sh"; then . /etc/mrg/accounts.sh; fi',
  );
  return `${lines.join("\n")}\n`;
}

/**
 * The configuration as directives for a container's native boot (mrg-boot.h;
 * no process a node): `hostname`, `wait IF` (up to 60 s: links may be plumbed
 * after the node boots), `addr IF CIDR` (replaced), `up IF`, `forward 0|1`,
 * `route DEST GATEWAY IF` (replaced). The native boot then fetches
 * `accounts.sh` itself and runs it only when the foundry has one, so a
 * materialization without accounts costs no process a node.
 */
export function configText(c: NodeConfig): string {
  const lines = [`hostname ${q(c.hostname)}`];
  for (const i of c.interfaces) {
    lines.push(`wait ${q(i.name)}`, ...i.addrs.map((a) => `addr ${q(i.name)} ${q(a)}`), `up ${q(i.name)}`);
  }
  lines.push(`forward ${c.forwarding ? 1 : 0}`);
  for (const r of c.routes) lines.push(`route ${q(r.dest)} ${q(r.gateway)} ${q(r.dev)}`);
  return `${lines.join("\n")}\n`;
}

const NAME = /^[a-z][a-z0-9]{0,31}$/;
/** A shell word in single quotes (keys' comments are free text). */
const sq = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/**
 * The project's members as accounts, for a node's busybox shell: passwd,
 * group and shadow lines added when missing (uids are the portal's, the same
 * in XDCs, so files keep their owners), a home per member, their public keys
 * in `/etc/mrg/keys/<user>` (root's files: a node's user cannot change who
 * logs in as them), and, where the image has OpenSSH (Debian images), sshd
 * with its own host key, keys only, no root login. Idempotent: a reboot runs
 * it again.
 */
export function accountsScript(a: NodeAccounts): string {
  if (!NAME.test(a.project)) throw new Error(`accounts.project: '${a.project}' is not a project name`);
  const id = (n: number, what: string) => {
    if (!Number.isInteger(n) || n < 1000 || n > 2 ** 31) throw new Error(`${what}: ${n} is not an id ≥ 1000`);
    return n;
  };
  const gid = id(a.gid, "accounts.gid");
  const lines = [
    "B=/usr/lib/mrg/busybox",
    "sh=/bin/sh; [ -x /bin/bash ] && sh=/bin/bash",
    "mkdir -p /etc/mrg/keys /home",
    'has() { $B grep -q "^$1:" "$2" 2>/dev/null; }',
    `has ${a.project} /etc/group || echo '${a.project}:x:${gid}:${a.users.map((u) => u.name).join(",")}' >> /etc/group`,
  ];
  a.users.forEach((u, i) => {
    if (!NAME.test(u.name)) throw new Error(`accounts.users[${i}].name: '${u.name}' is not a user name`);
    const uid = id(u.uid, `accounts.users[${i}].uid`);
    lines.push(
      `has ${u.name} /etc/passwd || echo "${u.name}:x:${uid}:${uid}::/home/${u.name}:$sh" >> /etc/passwd`,
      `has ${u.name} /etc/group || echo '${u.name}:x:${uid}:' >> /etc/group`,
      `has ${u.name} /etc/shadow || echo '${u.name}:*:19000:0:99999:7:::' >> /etc/shadow`,
      `[ -d /home/${u.name} ] || { mkdir -p /home/${u.name}; chown ${uid}:${uid} /home/${u.name}; chmod 750 /home/${u.name}; }`,
      `printf '%s\\n' ${
        u.keys
          .filter((k) => !k.includes("\n"))
          .map(sq)
          .join(" ") || "''"
      } > /etc/mrg/keys/${u.name}`,
    );
  });
  lines.push(
    "if [ -x /usr/sbin/sshd ]; then",
    "  [ -f /etc/mrg/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/mrg/ssh_host_ed25519_key",
    "  printf '%s\\n' 'HostKey /etc/mrg/ssh_host_ed25519_key' 'AuthorizedKeysFile /etc/mrg/keys/%u' \\",
    "    'PasswordAuthentication no' 'KbdInteractiveAuthentication no' 'PermitRootLogin no' 'UsePAM no' \\",
    "    'PrintMotd no' 'PidFile /run/mrg-sshd.pid' 'Subsystem sftp internal-sftp' > /etc/mrg/sshd_config",
    "  mkdir -p /run/sshd",
    "  [ -f /run/mrg-sshd.pid ] && kill -0 $(cat /run/mrg-sshd.pid) 2>/dev/null || /usr/sbin/sshd -f /etc/mrg/sshd_config",
    "fi",
  );
  return `${lines.join("\n")}\n`;
}

/** Write the materialization's accounts file (atomically: a node may be fetching it). */
export function writeAccounts(foundryDir: string, a: NodeAccounts): void {
  mkdirSync(foundryDir, { recursive: true });
  const f = join(foundryDir, "accounts.sh");
  writeFileSync(`${f}.tmp`, accountsScript(a));
  renameSync(`${f}.tmp`, f);
  saveAccounts(foundryDir, a);
}

export function writeNodeConfig(foundryDir: string, node: NodePlan): void {
  const dir = join(foundryDir, node.name);
  mkdirSync(dir, { recursive: true });
  const c = nodeConfig(node);
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(c, null, 2)}\n`);
  writeFileSync(join(dir, "config.sh"), configScript(c));
  writeFileSync(join(dir, "config.txt"), configText(c));
}
