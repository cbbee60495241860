/**
 * Each member's own key pair for inside the testbed, as MergeTB gives one:
 * made in their home on the portal's storage (`~/.ssh/merge_key`, theirs,
 * 0600), which every XDC of theirs mounts, its public half authorized on their
 * XDCs and nodes beside the keys they gave. So `ssh c0` from an XDC works with
 * nothing copied in; the XDC's ssh tries it with the usual defaults
 * (`XDC_SSH_CONFIG`). The private half never leaves the home it was made in.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

export const MERGE_KEY = "merge_key";

const making = new Map<string, Promise<string | undefined>>();

/**
 * The public half of `user`'s merge key, made now in `home` if it has none;
 * undefined where there is no home (a portal without storage) or ssh-keygen
 * cannot run (the reason is logged: their own keys still work).
 */
export function mergeKey(
  home: string,
  user: string,
  uid: number,
  log: (m: string) => void = () => {},
): Promise<string | undefined> {
  const pub = join(home, ".ssh", `${MERGE_KEY}.pub`);
  if (existsSync(pub) && existsSync(join(home, ".ssh", MERGE_KEY))) return readFile(pub, "utf8").then((s) => s.trim());
  if (!existsSync(home)) return Promise.resolve(undefined);
  const have = making.get(home);
  if (have) return have;
  const p = make(home, user, uid).catch((e: Error) => {
    log(`merge key of ${user}: ${e.message}`);
    return undefined;
  });
  making.set(home, p);
  return p.finally(() => making.delete(home));
}

async function make(home: string, user: string, uid: number): Promise<string> {
  const dir = join(home, ".ssh");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await owned(dir, uid);
  // Made under a temporary name and renamed: a reader never sees half a pair.
  const tmp = join(dir, `.${MERGE_KEY}.${process.pid}.${Date.now()}`);
  try {
    await promisify(execFile)("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${user}@merge`, "-f", tmp]);
    await owned(tmp, uid);
    await owned(`${tmp}.pub`, uid);
    await rename(tmp, join(dir, MERGE_KEY));
    await rename(`${tmp}.pub`, join(dir, `${MERGE_KEY}.pub`));
  } finally {
    await rm(tmp, { force: true });
    await rm(`${tmp}.pub`, { force: true });
  }
  return (await readFile(join(dir, `${MERGE_KEY}.pub`), "utf8")).trim();
}

/** The user's own, where the portal may give files away (as root); as another user it keeps them. */
async function owned(path: string, uid: number): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await chown(path, uid, uid);
}
