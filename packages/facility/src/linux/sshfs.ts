/**
 * The portal's storage on a machine that is not the portal's: sshfs (FUSE) of
 * the portal's storage server (`xdc/src/storage-server.ts`: SFTP only, chrooted
 * to `home/` and `proj/`) on a directory of this host, which the data plane
 * then uses as its `storage` (nodes bind-mount from it as on one machine). The
 * host's key pair is made here and stays here; only its public key goes to the
 * portal. The server's host key is pinned (no trust on first use).
 *
 * Owners: an SFTP session is one user's (the server's root, chrooted), and
 * sshfs does not pass the writer's uid, so a file made through sshfs alone
 * is root's. So sshfs (`idmap=none`: ids are the portal's everywhere) is
 * mounted where only root reaches it (`<dir>/sftp`, no `allow_other`), and
 * bindfs over it is what nodes see: `--create-as-user` chowns what a user
 * makes to them (over SFTP's setstat, which the root session may do; a
 * setgid directory's group is kept), `allow_other` and the kernel's
 * `default_permissions` check every access against those owners and modes,
 * so a user cannot write another's home or files, nor give a file away.
 * Why not per-user sshfs mounts: a node binds one `/proj/<project>` for
 * every member, so one mount has to carry every writer's uid.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { check, run } from "./command.ts";
import { mounted } from "./env.ts";

/** This host's storage key pair (in `dir`, made once); returns the public key line. */
export async function storageKeyPair(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = join(dir, "storage_ed25519");
  if (!existsSync(key))
    await check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "merge-storage-client", "-f", key]);
  return readFileSync(`${key}.pub`, "utf8").trim();
}

export interface StorageRemote {
  host: string;
  port: number;
  /** The server's host key as a known_hosts line (`[host]:port ssh-ed25519 …`). */
  knownHost: string;
}

/** root's own sshfs mount of the server, under `dir` (made 0700: nobody else reaches it). */
const sftpMount = (dir: string) => join(dir, "sftp", "root");

/** Mount the portal's storage at `mountpoint` (idempotent); `dir` holds the key pair and known_hosts. */
export async function storageMount(dir: string, remote: StorageRemote, mountpoint: string): Promise<void> {
  if (mounted(mountpoint)) return;
  await storageKeyPair(dir);
  mkdirSync(mountpoint, { recursive: true });
  const raw = sftpMount(dir);
  await sftpUp(dir, remote, raw, mountpoint);
  const r = await run("bindfs", ["--create-as-user", "-o", "allow_other,default_permissions", raw, mountpoint]);
  if (r.code !== 0) {
    await storageUnmount(mountpoint, dir);
    throw new Error(`mounting the portal's storage on ${mountpoint} (bindfs over sshfs): ${r.stderr.trim()}`);
  }
}

async function sftpUp(dir: string, remote: StorageRemote, mountpoint: string, shown: string): Promise<void> {
  if (mounted(mountpoint)) return;
  mkdirSync(join(dir, "sftp"), { recursive: true, mode: 0o700 });
  mkdirSync(mountpoint, { recursive: true });
  const known = join(dir, "storage_known_hosts");
  writeFileSync(known, `${remote.knownHost}\n`);
  const r = await run("sshfs", [
    "-o",
    [
      `port=${remote.port}`,
      `IdentityFile=${join(dir, "storage_ed25519")}`,
      "IdentitiesOnly=yes",
      `UserKnownHostsFile=${known}`,
      "StrictHostKeyChecking=yes",
      "BatchMode=yes",
      "ServerAliveInterval=15",
      "reconnect",
      "idmap=none",
      // Writes done when close returns: bindfs above closes asynchronously (FUSE release), so sshfs's
      // own write-behind would let a reader on the portal see a file before its data.
      "sshfs_sync",
      // sshfs caches attributes, names and listings for 20 s by default, so a chown or chmod made on the
      // portal showed that late here. 1 s: with the kernel's 1 s attribute cache of this mount and of bindfs
      // above, a change shows within ~3 s; a listing still answers the stats that follow it (ls -l) from
      // the cache. The cost: a file looked at again after 1 s is asked of the server again (a round trip).
      "dcache_timeout=1",
    ].join(","),
    `root@${remote.host}:/`,
    mountpoint,
  ]);
  if (r.code !== 0) {
    throw new Error(`mounting the portal's storage ${remote.host}:${remote.port} on ${shown}: ${r.stderr.trim()}`);
  }
}

/**
 * Unmount (lazily: nodes holding binds of it keep theirs until they stop); bindfs and sshfs exit with
 * their mounts. `dir` is the one given to storageMount.
 */
export async function storageUnmount(mountpoint: string, dir: string): Promise<void> {
  if (mounted(mountpoint)) await check("umount", ["-l", mountpoint]);
  const raw = sftpMount(dir);
  if (mounted(raw)) await check("umount", ["-l", raw]);
}
