/**
 * The SSH jump host: OpenSSH's sshd on its own port, in a mount namespace of
 * its own where /etc/passwd, group, shadow and hosts are files this module
 * keeps current. Portal users are accounts only there (never of the machine);
 * each of their keys is listed with `restrict,port-forwarding` and one
 * `permitopen` per XDC of their projects, so the only thing a key can do is
 * `ssh -J` to those XDCs' port 22. A user with no XDC has no keys listed and
 * is refused. No shell, no TTY, no other forwarding.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountFiles, keyLines, rewriteInPlace, writeKeyFiles } from "./accounts.ts";
import { hostKey, SshdServer, sshdBinary } from "./sshd.ts";

export interface JumpTarget {
  /** `x0.myproj` */
  id: string;
  /** `x0-myproj` */
  hostname: string;
  address: string;
}

export interface JumpAccount {
  name: string;
  uid: number;
  keys: string[];
  /** The XDCs this user may reach. */
  targets: JumpTarget[];
}

export interface JumpHostOptions {
  dir: string;
  host?: string;
  port?: number;
  log?: (m: string) => void;
  /** sshd to run (default $MERGE_SSHD, else /usr/sbin/sshd from the Debian package openssh-server). */
  sshd?: string;
}

const SYSTEM = ["root", "sshd", "nobody"];

/** sshd in its own mount namespace: the generated account files replace the machine's for it alone. */
const SCRIPT = `set -e
for f in passwd group shadow hosts; do mount --bind "$JUMP_DIR/etc/$f" "/etc/$f"; done
# sshd reads a user's keys as that user: the keys are reached through a path any user may pass.
mount -t tmpfs -o mode=755,size=1m tmpfs /run/sshd
mkdir /run/sshd/keys
mount --bind "$JUMP_DIR/keys" /run/sshd/keys
exec "$JUMP_SSHD" -D -e -f "$JUMP_DIR/sshd_config"
`;

export class JumpHost extends SshdServer {
  private constructor(opts: JumpHostOptions) {
    super(opts, 2202);
  }

  /** Starts sshd (with no accounts until `update`); resolves once it listens. */
  static async start(opts: JumpHostOptions): Promise<JumpHost> {
    const sshd = sshdBinary(
      opts.sshd,
      (path) =>
        `the jump host needs OpenSSH's sshd (${path}): install the Debian package openssh-server (scripts/setup.sh does)`,
    );
    const j = new JumpHost(opts);
    // sshd reads a user's authorized keys as that user: each key file belongs to its user, the directory can be
    // passed (not listed); sshd sees it at /run/sshd/keys (SCRIPT), whatever the data directory's mode.
    mkdirSync(join(j.dir, "etc"), { recursive: true, mode: 0o700 });
    mkdirSync(join(j.dir, "keys"), { recursive: true, mode: 0o711 });
    chmodSync(j.dir, 0o711);
    chmodSync(join(j.dir, "keys"), 0o711);
    await hostKey(j.dir, "merge-jump");
    writeFileSync(join(j.dir, "sshd_config"), j.config());
    j.update([]);
    // sshd's privilege separation directory (what the openssh-server package makes at boot).
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const failed = await j.runSshd({
      script: SCRIPT,
      propagation: "private",
      env: { JUMP_DIR: j.dir, JUMP_SSHD: sshd },
    });
    if (failed === undefined) {
      opts.log?.(`jump host: sshd on ${j.host}:${j.port} (log ${join(j.dir, "sshd.log")})`);
      return j;
    }
    await j.stop();
    throw new Error(`the jump host's sshd did not start on ${j.host}:${j.port}: ${failed}`);
  }

  /** Accounts, keys and XDC names as the portal has them now. */
  update(accounts: readonly JumpAccount[]): void {
    const base = {
      passwd: systemLines("/etc/passwd", "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin"),
      group: systemLines("/etc/group", "nogroup:x:65534:"),
      shadow: systemLines("/etc/shadow", ""),
    };
    const { files } = accountFiles(base, accounts, { shell: "/bin/sh", home: () => "/" });
    const etc = join(this.dir, "etc");
    rewriteInPlace(join(etc, "passwd"), files.passwd);
    rewriteInPlace(join(etc, "group"), files.group);
    rewriteInPlace(join(etc, "shadow"), files.shadow, 0o640);
    const hosts = new Map<string, string>();
    for (const a of accounts) for (const t of a.targets) hosts.set(t.hostname, t.address);
    rewriteInPlace(
      join(etc, "hosts"),
      `127.0.0.1 localhost\n${[...hosts].map(([name, addr]) => `${addr} ${name}\n`).join("")}`,
    );
    writeKeyFiles(
      join(this.dir, "keys"),
      accounts
        .filter((a) => !SYSTEM.includes(a.name) && a.targets.length > 0)
        .map((a) => {
          const permit = a.targets.flatMap((t) => [`permitopen="${t.hostname}:22"`, `permitopen="${t.address}:22"`]);
          const options = ["restrict", "port-forwarding", ...permit].join(",");
          return { name: a.name, text: keyLines(a.keys, options), mode: 0o600, owner: a.uid };
        }),
    );
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((res) => {
      c.once("exit", () => res());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 3000).unref();
    });
  }

  private config(): string {
    return [
      "# The Merge jump host (written at start): ssh -J to the XDCs of your projects, nothing else.",
      `ListenAddress ${this.host}:${this.port}`,
      `HostKey ${join(this.dir, "ssh_host_ed25519_key")}`,
      "AuthorizedKeysFile /run/sshd/keys/%u",
      `PidFile ${join(this.dir, "sshd.pid")}`,
      // The keys directory is root's and 0700, but may sit under a world-writable /tmp (tests).
      "StrictModes no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "PermitRootLogin no",
      "AllowTcpForwarding local",
      "AllowAgentForwarding no",
      "X11Forwarding no",
      "PermitTunnel no",
      "GatewayPorts no",
      "PermitTTY no",
      "PrintMotd no",
      'ForceCommand /bin/echo "this is the Merge jump host: use it with ssh -J (mrg xdc ssh)"',
      "LogLevel VERBOSE",
      "",
    ].join("\n");
  }
}

/** The machine's entries for the system accounts sshd needs (or `fallback` where the machine has none). */
function systemLines(file: string, fallback: string): string {
  const lines = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => SYSTEM.includes(l.split(":")[0] as string) || l.startsWith("nogroup:"))
    : [];
  if (fallback && !lines.some((l) => l.split(":")[0] === fallback.split(":")[0])) lines.push(fallback);
  return lines.map((l) => `${l}\n`).join("");
}
