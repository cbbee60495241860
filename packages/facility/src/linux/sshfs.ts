/**
 * The portal's storage on a machine that is not the portal's: sshfs (FUSE) of
 * the portal's storage server (`xdc/src/storage-server.ts`: SFTP only, chrooted
 * to `home/` and `proj/`) on a directory of this host, which the data plane
 * then uses as its `storage` (nodes bind-mount from it as on one machine). The
 * host's key pair is made here and stays here; only its public key goes to the
 * portal. The server's host key is pinned (no trust on first use). `allow_other`
 * and `default_permissions`: every node's users reach it, the kernel checks
 * modes and the portal's uids (`idmap=none`: ids are the same everywhere).
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

/** Mount the portal's storage at `mountpoint` (idempotent); `dir` holds the key pair and known_hosts. */
export async function storageMount(dir: string, remote: StorageRemote, mountpoint: string): Promise<void> {
  if (mounted(mountpoint)) return;
  await storageKeyPair(dir);
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
      "allow_other",
      "default_permissions",
      "idmap=none",
    ].join(","),
    `root@${remote.host}:/`,
    mountpoint,
  ]);
  if (r.code !== 0) {
    throw new Error(`mounting the portal's storage ${remote.host}:${remote.port} on ${mountpoint}: ${r.stderr.trim()}`);
  }
}

/** Unmount (lazily: nodes holding binds of it keep theirs until they stop); sshfs exits with it. */
export async function storageUnmount(mountpoint: string): Promise<void> {
  if (mounted(mountpoint)) await check("umount", ["-l", mountpoint]);
}
