// A chown or chmod made on the portal's side shows promptly on a host that mounts the portal's
// storage (sshfs under bindfs, facility/src/linux/sshfs.ts): sshfs's own attribute and directory
// cache would keep the old owner and mode for up to 20 s (its default `dcache_timeout`); the mount
// caps it at 1 s, so with the kernel's 1 s attribute caches of both FUSE layers a change shows
// within ~3 s at worst. A new file and a deleted one show as promptly. Needs root, /dev/fuse,
// sshfs, bindfs and sshd.
import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { storageKeyPair, storageMount, storageUnmount } from "@merge/facility/linux";
import { StorageServer } from "../src/index.ts";
import { freePort, mountsUnder, sshfsSkip as skip } from "./fixture.ts";

/** ms until `ok()` holds, polling every 50 ms; fails after `limit` ms. */
async function until(what: string, ok: () => boolean, limit = 30_000): Promise<number> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > limit) assert.fail(`${what}: not seen after ${limit} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

/** How long a change may take to show: the caches' 3 s, and room for a loaded machine (sshfs's default was 20 s). */
const PROMPT_MS = 5000;

describe("the portal's storage over sshfs: changes show promptly", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-storage-attr-"));
  const home = join(tmp, "portal", "home");
  const proj = join(tmp, "portal", "proj");
  const mnt = join(tmp, "shared", "storage");
  let server: StorageServer | undefined;
  after(async () => {
    try {
      await storageUnmount(mnt, join(tmp, "host"));
      await server?.stop();
      assert.deepEqual(mountsUnder(tmp), []);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("chown, chmod, a new file and a deleted one on the portal show on the host within seconds", {
    timeout: 120_000,
  }, async () => {
    mkdirSync(join(home, "alice"), { recursive: true });
    mkdirSync(join(proj, "p1"), { recursive: true });
    const f = join(proj, "p1", "data.txt");
    writeFileSync(f, "x\n");
    chownSync(f, 20001, 20002);
    chmodSync(f, 0o640);
    server = await StorageServer.start({
      dir: join(tmp, "storage"),
      homeRoot: home,
      projRoot: proj,
      port: await freePort(),
    });
    server.authorize([await storageKeyPair(join(tmp, "host"))]);
    await storageMount(join(tmp, "host"), { host: server.host, port: server.port, knownHost: server.knownHost() }, mnt);
    const seen = join(mnt, "proj", "p1", "data.txt");
    // Read through the mount first, so every cache holds the old owner and mode.
    for (let i = 0; i < 3; i++) {
      const s = statSync(seen);
      assert.deepEqual([s.uid, s.gid, s.mode & 0o777], [20001, 20002, 0o640]);
    }

    chownSync(f, 20003, 20002);
    const chown = await until("chown", () => statSync(seen).uid === 20003);
    chmodSync(f, 0o600);
    const chmod = await until("chmod", () => (statSync(seen).mode & 0o777) === 0o600);
    writeFileSync(join(proj, "p1", "new.txt"), "n\n");
    const made = await until("a new file", () => existsSync(join(mnt, "proj", "p1", "new.txt")));
    rmSync(join(proj, "p1", "new.txt"));
    const gone = await until("a deleted file", () => !existsSync(join(mnt, "proj", "p1", "new.txt")));
    console.log(`shown after: chown ${chown} ms, chmod ${chmod} ms, new file ${made} ms, deleted ${gone} ms`);
    for (const [what, ms] of Object.entries({ chown, chmod, made, gone })) {
      assert.ok(ms < PROMPT_MS, `${what} took ${ms} ms to show (sshfs's 20 s cache?)`);
    }
  });
});
