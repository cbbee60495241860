/**
 * Unix account files for portal users: what an XDC's /etc/passwd, /etc/group
 * and /etc/shadow say, and what the jump host's sshd sees. Portal users are not
 * accounts of the machine; these files are bind-mounted over /etc inside the
 * container (or the jump host's own mount namespace) only.
 */
import {
  chownSync,
  closeSync,
  constants,
  ftruncateSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { XdcAccount } from "./wire.ts";

export interface AccountFiles {
  passwd: string;
  group: string;
  shadow: string;
}

/** Names the base files keep; a portal user of one of these names gets no account (it would be the system's). */
function baseNames(passwd: string): Set<string> {
  return new Set(
    passwd
      .split("\n")
      .filter((l) => l.includes(":"))
      .map((l) => l.split(":")[0] as string),
  );
}

/**
 * The base system's entries plus one per account (home `/home/<name>`, its own group of the same id) and,
 * when given, the project's group holding every account.
 */
export function accountFiles(
  base: { passwd: string; group: string; shadow: string },
  accounts: readonly XdcAccount[],
  opts: { shell: string; home: (name: string) => string; project?: { name: string; gid: number } },
): { files: AccountFiles; skipped: string[] } {
  const taken = baseNames(base.passwd);
  const kept = accounts.filter((a) => !taken.has(a.name));
  const skipped = accounts.filter((a) => taken.has(a.name)).map((a) => a.name);
  const nl = (s: string) => (s === "" || s.endsWith("\n") ? s : `${s}\n`);
  const passwd =
    nl(base.passwd) +
    kept.map((a) => `${a.name}:x:${a.uid}:${a.uid}:${a.name}:${opts.home(a.name)}:${opts.shell}\n`).join("");
  const groups = kept.map((a) => `${a.name}:x:${a.uid}:\n`);
  if (opts.project !== undefined && !taken.has(opts.project.name)) {
    groups.push(`${opts.project.name}:x:${opts.project.gid}:${kept.map((a) => a.name).join(",")}\n`);
  }
  // `*`: no password can match, yet the account is not locked (sshd refuses locked accounts, `!`).
  const shadow = nl(base.shadow) + kept.map((a) => `${a.name}:*:19000:0:99999:7:::\n`).join("");
  return { files: { passwd, group: nl(base.group) + groups.join(""), shadow }, skipped };
}

/**
 * Writes a file in place (the same inode: these files are bind-mounted, and a rename would leave the mount on
 * the old file) without ever showing it empty: the new text goes over the old from the start, then the file is
 * cut to its length. A truncate first reset connections: sshd, re-executed for each one, looks up its privilege
 * separation user in /etc/passwd before the key exchange, and the system accounts lead the file unchanged.
 */
export function rewriteInPlace(path: string, text: string, mode = 0o644): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, mode);
  try {
    const buf = Buffer.from(text);
    for (let at = 0; at < buf.length; ) at += writeSync(fd, buf, at, buf.length - at, at);
    ftruncateSync(fd, buf.length);
  } finally {
    closeSync(fd);
  }
}

/** One account's authorized_keys file in a keys directory (see `writeKeyFiles`). */
export interface KeyFile {
  /** The account's name: the file's. */
  name: string;
  text: string;
  mode: number;
  /** Its owner and group (sshd reads a user's keys as that user); else root's. */
  owner?: number;
}

/**
 * Makes `dir` hold exactly `files`: each written whole (a temporary, then a rename, so sshd never
 * reads half a file), and every other file (accounts gone) removed.
 */
export function writeKeyFiles(dir: string, files: readonly KeyFile[]): void {
  for (const f of files) {
    const tmp = join(dir, `.${f.name}.tmp`);
    writeFileSync(tmp, f.text, { mode: f.mode });
    if (f.owner !== undefined) chownSync(tmp, f.owner, f.owner);
    renameSync(tmp, join(dir, f.name));
  }
  const wanted = new Set(files.map((f) => f.name));
  for (const f of readdirSync(dir)) if (!wanted.has(f)) rmSync(join(dir, f), { force: true });
}

/** One authorized_keys line per key; keys that are not one line of `type base64 [comment]` are dropped. */
export function keyLines(keys: readonly string[], options = ""): string {
  return keys
    .map((k) => k.trim())
    .filter((k) => /^[a-z0-9@.-]+ [A-Za-z0-9+/=]+( [^\n]*)?$/.test(k))
    .map((k) => `${options ? `${options} ` : ""}${k}\n`)
    .join("");
}
