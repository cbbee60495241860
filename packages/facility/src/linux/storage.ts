/**
 * The portal's shared storage on nodes: `/home/<user>` for each member and
 * `/proj/<project>` are bind mounts of the portal's directories
 * (`<storage>/home/<user>`, `<storage>/proj/<project>`), the same files the
 * project's XDCs mount. On the portal's machine `<storage>` is the portal's data
 * directory; on another host it is where that host mounts the portal's storage
 * (`sshfs.ts`). Ownership is the portal's ids: a home is its user's (0750), the
 * project directory root's and the project group's, setgid (2770) so files stay
 * the project's. mrg-node attaches the binds before the node's init runs.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NodeAccounts } from "@merge/materialize";

export interface StorageBind {
  source: string;
  target: string;
}

/** A member's home on the shared storage, made if missing and owned by their uid. */
export function homeDirFor(homeRoot: string, user: string, uid: number): string {
  const p = join(homeRoot, user);
  if (!existsSync(p)) mkdirSync(p, { recursive: true, mode: 0o750 });
  chownSync(p, uid, uid);
  return p;
}

/** The project directory on the shared storage: root and the project's group, setgid. */
export function projectDirFor(projRoot: string, project: string, gid: number): string {
  const p = join(projRoot, project);
  if (!existsSync(p)) mkdirSync(p, { recursive: true });
  chownSync(p, 0, gid);
  chmodSync(p, 0o2770);
  return p;
}

/**
 * A file beside a mount point of the portal's storage while it is not mounted (storage-remote.ts;
 * beside, not in it: FUSE mounts only on an empty directory). Binding from there would give nodes
 * this machine's empty directories.
 */
export const notMountedMarker = (storage: string) => `${storage}.not-mounted`;

/** What a node of a materialization with these accounts mounts from `storage`. */
export function storageBinds(storage: string, a: NodeAccounts): StorageBind[] {
  if (existsSync(notMountedMarker(storage))) {
    throw new Error(
      `the portal's storage is not mounted on ${storage} yet: the portal lists this facility's storage key at its storage server when it next asks (StorageKey)`,
    );
  }
  return [
    ...a.users.map((u) => ({ source: homeDirFor(join(storage, "home"), u.name, u.uid), target: `/home/${u.name}` })),
    { source: projectDirFor(join(storage, "proj"), a.project, a.gid), target: `/proj/${a.project}` },
  ];
}

/** What nodes of a materialization mount: nothing without the portal's storage or without accounts (kept in `foundryDir`). */
export function nodeStorageBinds(storage: string | undefined, foundryDir: string): StorageBind[] {
  const accounts = storage ? loadAccounts(foundryDir) : undefined;
  return storage && accounts ? storageBinds(storage, accounts) : [];
}

/** mrg-node's BINDS field: `SRC:DST,...` (paths with separators of that field refused), or `-`. */
export function bindsField(binds: StorageBind[]): string {
  for (const b of binds) {
    if (/[\s:,]/.test(b.source) || /[\s:,]/.test(b.target) || !b.target.startsWith("/")) {
      throw new Error(`storage bind ${b.source} -> ${b.target}: paths may not contain spaces, ':' or ','`);
    }
  }
  return binds.length ? binds.map((b) => `${b.source}:${b.target}`).join(",") : "-";
}

const ACCOUNTS = "accounts.json";

/** Keep the accounts beside accounts.sh: node starts (and restarts after a facility restart) read them. */
export function saveAccounts(foundryDir: string, a: NodeAccounts): void {
  const f = join(foundryDir, ACCOUNTS);
  writeFileSync(`${f}.tmp`, `${JSON.stringify(a)}\n`);
  renameSync(`${f}.tmp`, f);
}

export function loadAccounts(foundryDir: string): NodeAccounts | undefined {
  try {
    return JSON.parse(readFileSync(join(foundryDir, ACCOUNTS), "utf8")) as NodeAccounts;
  } catch {
    return undefined;
  }
}
