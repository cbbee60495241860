/**
 * The portal's storage for other machines: an SFTP-only OpenSSH sshd serving
 * the portal's `home/` and `proj/`, which facility hosts and XDC hosts on other
 * machines mount with sshfs (`facility/src/linux/sshfs.ts`) and bind into nodes
 * and XDCs as on one machine. Why SFTP/sshfs and not NFS: this kernel has
 * neither the NFS server (`nfsd` is not a registered file system) nor the NFS
 * client, and loads no modules; FUSE is there (`/dev/fuse`), sshfs is a Debian
 * package, and OpenSSH is already the jump host. Who may mount: the hosts
 * whose public keys the portal lists (`authorize`); each made its key pair
 * where it lives. What they see: sshd runs in a mount namespace of its own
 * where a root-owned `/run/mrg-storage` holds `home` and `proj` (bound from the
 * portal's directories), the chroot of every session; the portal's `home` and `proj` are made
 * shared mounts first (a bind onto itself, undone at stop) and the server's copies
 * their slaves, so a project or home volume mounted later (project-volume.ts) shows there too
 * (a machine whose `/` is private propagates nothing otherwise); `internal-sftp` only, no shell, no forwarding.
 * Limits: the session is root's, so files a remote machine creates are root's
 * until chowned (sshfs does not pass the writer's uid); ids are the portal's
 * everywhere, so existing files keep their owners (`idmap=none`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { check, run, sleep } from "./run.ts";
import { hostKey, SshdServer, sshdBinary } from "./sshd.ts";

function isMountPoint(dir: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((l) => l.split(" ")[4] === dir);
}

export interface StorageServerOptions {
  dir: string;
  homeRoot: string;
  projRoot: string;
  host?: string;
  port?: number;
  sshd?: string;
}

const SCRIPT = `set -e
mount -t tmpfs -o mode=755,size=1m mrg-storage /run/mrg-storage
mkdir /run/mrg-storage/home /run/mrg-storage/proj
mount --rbind "$STORAGE_HOME" /run/mrg-storage/home
mount --rbind "$STORAGE_PROJ" /run/mrg-storage/proj
exec "$STORAGE_SSHD" -D -e -f "$STORAGE_DIR/sshd_config"
`;

export class StorageServer extends SshdServer {
  /** The binds onto themselves this server made to share home and proj (undone at stop). */
  private shared: string[] = [];

  private constructor(opts: StorageServerOptions) {
    super(opts, 2203);
  }

  static async start(opts: StorageServerOptions): Promise<StorageServer> {
    const sshd = sshdBinary(opts.sshd, (path) => `the storage server needs OpenSSH's sshd (${path}): openssh-server`);
    const s = new StorageServer(opts);
    mkdirSync(s.dir, { recursive: true, mode: 0o700 });
    await hostKey(s.dir, "merge-storage");
    if (!existsSync(join(s.dir, "authorized_keys"))) s.authorize([]);
    writeFileSync(join(s.dir, "sshd_config"), s.config());
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    mkdirSync("/run/mrg-storage", { recursive: true, mode: 0o755 });
    const projRoot = resolve(opts.projRoot);
    for (const root of [resolve(opts.homeRoot), projRoot]) {
      mkdirSync(root, { recursive: true });
      if (!isMountPoint(root)) {
        await check("mount", ["--bind", root, root]);
        s.shared.push(root);
      }
      await check("mount", ["--make-shared", root]);
    }
    const failed = await s.runSshd({
      script: SCRIPT,
      propagation: "slave",
      env: {
        STORAGE_DIR: s.dir,
        STORAGE_SSHD: sshd,
        STORAGE_HOME: resolve(opts.homeRoot),
        STORAGE_PROJ: projRoot,
      },
    });
    if (failed === undefined) return s;
    await s.stop();
    throw new Error(`the storage server's sshd did not start on ${s.host}:${s.port}: ${failed}`);
  }

  /** The host key line a client pins (`[host]:port ssh-ed25519 …`). */
  knownHost(): string {
    const pub = readFileSync(join(this.dir, "ssh_host_ed25519_key.pub"), "utf8").trim().split(" ");
    return `[${this.host}]:${this.port} ${pub[0]} ${pub[1]}`;
  }

  /** The hosts that may mount: their public keys (one line each; anything else is refused). */
  authorize(keys: readonly string[]): void {
    for (const [i, k] of keys.entries()) {
      if (!/^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+( [^\n]*)?$/.test(k.trim())) {
        throw new Error(`storage host key ${i}: not an OpenSSH public key line`);
      }
    }
    writeFileSync(join(this.dir, "authorized_keys"), keys.map((k) => `restrict ${k.trim()}\n`).join(""), {
      mode: 0o600,
    });
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const done = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await Promise.race([done, sleep(5000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
    // Not lazily: a volume still mounted under it (the portal runs on) keeps the bind.
    const kept: string[] = [];
    for (const root of this.shared) if ((await run("umount", [root])).code !== 0) kept.push(root);
    this.shared = kept;
  }

  private config(): string {
    return [
      `ListenAddress ${this.host}:${this.port}`,
      `HostKey ${join(this.dir, "ssh_host_ed25519_key")}`,
      `AuthorizedKeysFile ${join(this.dir, "authorized_keys")}`,
      `PidFile none`,
      "AllowUsers root",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "ChrootDirectory /run/mrg-storage",
      "ForceCommand internal-sftp",
      "Subsystem sftp internal-sftp",
      "AllowTcpForwarding no",
      "AllowAgentForwarding no",
      "X11Forwarding no",
      "PermitTTY no",
      "",
    ].join("\n");
  }
}
