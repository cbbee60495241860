/**
 * The facility daemon's `--storage`: a directory of this machine (the portal's
 * data directory when the portal runs here), or the portal's storage server,
 * `sftp://<host>:<port>` with its host key (`--storage-host-key`, the line of
 * its `ssh_host_ed25519_key.pub` or `[host]:port key` as known_hosts has it),
 * which the daemon mounts itself (sshfs.ts: sshfs under bindfs) at
 * `<data-dir>/storage` before the backend opens and unmounts when it stops,
 * so nodes on this facility bind the same files as on the portal's machine.
 * The key pair it mounts with is made in `<data-dir>/storage-client` and stays
 * there; the daemon answers its public key to the portal (FacilityService.StorageKey),
 * which lists it at its storage server, and keeps trying to mount until it is
 * listed (`retryMs`). Until then a marker beside the mount point says so, and
 * nodes that would bind from it are refused (storage.ts) rather than given
 * empty directories of this machine.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { mounted } from "./env.ts";
import { type StorageRemote, storageKeyPair, storageMount, storageUnmount } from "./sshfs.ts";
import { notMountedMarker } from "./storage.ts";

export type StorageOption = { kind: "dir"; dir: string } | { kind: "sftp"; remote: StorageRemote };

/** `--storage` and `--storage-host-key` as given; errors name the option and what would be valid. */
export function parseStorageOption(value: string, hostKey: string | undefined): StorageOption {
  if (!value.includes("://")) {
    if (hostKey !== undefined) throw new Error("--storage-host-key goes with --storage sftp://<host>:<port> only");
    return { kind: "dir", dir: resolve(value) };
  }
  const m = /^sftp:\/\/(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || !(port > 0 && port < 65536))
    throw new Error(`--storage '${value}': expected a directory or sftp://<host>:<port> (the portal's storage server)`);
  const host = (m[1] as string).replace(/^\[|\]$/g, "");
  if (!hostKey)
    throw new Error(
      `--storage ${value} needs --storage-host-key '<ssh-ed25519 AAAA…>' (the server's host key, pinned)`,
    );
  const words = hostKey.trim().split(/\s+/);
  const key = words[0]?.startsWith("ssh-") || words[0]?.startsWith("ecdsa-") ? words : words.slice(1);
  if (!/^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa)$/.test(key[0] ?? "") || !/^[A-Za-z0-9+/=]+$/.test(key[1] ?? ""))
    throw new Error(`--storage-host-key: not an OpenSSH public key ('ssh-ed25519 AAAA…'): '${hostKey.slice(0, 40)}'`);
  return { kind: "sftp", remote: { host, port, knownHost: `[${host}]:${port} ${key[0]} ${key[1]}` } };
}

export interface OpenStorage {
  /** What the backend binds from (`DataPlaneOptions.storage`). */
  path: string;
  /** This host's public key, when mounted from the storage server (for the portal to authorize). */
  publicKey?: string;
  /** Whether the storage is there to bind from now. */
  mounted(): boolean;
  close(): Promise<void>;
}

export interface OpenStorageOptions {
  /** Not authorized yet: try again every `retryMs` until mounted (default: fail at once). */
  retryMs?: number;
  log?: (m: string) => void;
}

/** Mount the portal's storage when it is remote; a directory is used as it is. */
export async function openStorage(
  opt: StorageOption,
  dataDir: string,
  o: OpenStorageOptions = {},
): Promise<OpenStorage> {
  if (opt.kind === "dir") return { path: opt.dir, mounted: () => true, close: async () => {} };
  const dir = join(resolve(dataDir), "storage-client");
  const path = join(resolve(dataDir), "storage");
  const publicKey = await storageKeyPair(dir);
  const refused = (e: unknown) =>
    new Error(`${(e as Error).message} (is this host's key authorized at the portal? ${publicKey})`);
  const marker = notMountedMarker(path);
  if (!mounted(path)) {
    mkdirSync(path, { recursive: true });
    writeFileSync(marker, "the portal's storage is mounted beside once its server lists this host's key\n");
  }
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let last = "";
  const attempt = async (): Promise<void> => {
    try {
      await storageMount(dir, opt.remote, path);
      rmSync(marker, { force: true });
      o.log?.(`the portal's storage mounted on ${path} with this host's key ${publicKey}`);
    } catch (e) {
      if (o.retryMs === undefined) throw refused(e);
      // Logged when it changes: a host waiting for the portal says so once, not every retry.
      const msg = refused(e).message;
      if (msg !== last) o.log?.(`${msg}; trying again every ${o.retryMs} ms`);
      last = msg;
      if (!closed) timer = setTimeout(() => void attempt(), o.retryMs).unref();
    }
  };
  await attempt();
  return {
    path,
    publicKey,
    mounted: () => mounted(path),
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await storageUnmount(path, dir);
      rmSync(marker, { force: true });
    },
  };
}
