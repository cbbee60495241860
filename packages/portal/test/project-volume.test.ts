// Per-project quotas for real: a loop-mounted ext4 volume per project on the portal's
// project directory. A write past the quota fails with ENOSPC; the portal's stop unmounts
// and its next start mounts again with the files kept; a bigger quota grows the volume, a
// smaller one is refused; a deleted project leaves no mount, loop device or image; bad
// policy names the file and field. Needs root, loop devices and mkfs.ext4; skipped otherwise.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeSync,
} from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { isMountPoint, parseHomeQuota, parseProjectQuota } from "../src/project-volume.ts";
import { Workspace } from "../src/workspace.ts";

const skip =
  (process.getuid?.() !== 0 && "needs root (loop devices, mount)") ||
  (!existsSync("/dev/loop-control") && "no loop devices") ||
  (!existsSync("/usr/sbin/mkfs.ext4") && "needs mkfs.ext4 (e2fsprogs)");

const MiB = 1024 * 1024;

/** Write `bytes` into `file`; the error code that stopped it, if any. */
function fill(file: string, bytes: number): string | undefined {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(MiB, 7);
  try {
    for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  } finally {
    closeSync(fd);
  }
}

describe("project quotas", () => {
  test("policy: sizes with units, errors name the file and field", () => {
    const q = parseProjectQuota("quota:\n  project:\n    default: 10GiB\n    projects: {big: 1TiB}\n", "p.yml");
    assert.equal(q.default, 10 * 1024 ** 3);
    assert.equal(q.projects.big, 1024 ** 4);
    assert.deepEqual(parseProjectQuota("quota:\n  storage: {bytes: 1}\n"), { projects: {} });
    assert.throws(
      () => parseProjectQuota("quota:\n  project: {default: 10 apples}\n", "p.yml"),
      /p\.yml.*quota\.project\.default.*10 apples/,
    );
    assert.throws(
      () => parseProjectQuota("quota:\n  project: {default: 1KiB}\n", "p.yml"),
      /quota\.project\.default.*smallest quota, 4MiB/,
    );
    assert.throws(
      () => parseProjectQuota("quota:\n  project: {dfault: 1GiB}\n", "p.yml"),
      /quota\.project\.dfault: unknown field; known: default, projects/,
    );
    const h = parseHomeQuota("quota:\n  home:\n    default: 2GiB\n    users: {alice: 20GiB}\n", "p.yml");
    assert.deepEqual(h, { default: 2 * 1024 ** 3, users: { alice: 20 * 1024 ** 3 } });
    assert.deepEqual(parseHomeQuota("quota:\n  project: {default: 1GiB}\n"), { users: {} });
    assert.throws(
      () => parseHomeQuota("quota:\n  home: {users: {bob: 3 parsecs}}\n", "p.yml"),
      /p\.yml.*quota\.home\.users\.bob.*3 parsecs/,
    );
    assert.throws(
      () => parseHomeQuota("quota:\n  home: {projects: {}}\n", "p.yml"),
      /quota\.home\.projects: unknown field; known: default, users/,
    );
  });

  describe("volumes (root)", { skip }, () => {
    const tmp = mkdtempSync(join(tmpdir(), "mrg-proj-volume-"));
    const dir = join(tmp, "proj", "pq");
    after(async () => {
      for (const d of [dir, join(tmp, "home", "hq"), join(tmp, "home", "roomy")]) {
        try {
          execFileSync("umount", ["-l", d], { stdio: "ignore" });
        } catch {}
      }
      rmSync(tmp, { recursive: true, force: true });
    });

    test("ENOSPC past the quota; kept across stop and start; grown; deleted without trace", async () => {
      const small = new Workspace(tmp, { projects: { pq: 8 * MiB } });
      // Files from before the quota move onto the volume.
      await small.createProject("other");
      execFileSync("mkdir", ["-p", dir]);
      await writeFile(join(dir, "before.txt"), "kept\n");
      await small.createProject("pq");
      assert.ok(isMountPoint(dir), "the project directory is a mount point");
      assert.ok(!isMountPoint(join(tmp, "proj", "other")), "a project without a quota is a plain directory");
      assert.equal(readFileSync(join(dir, "before.txt"), "utf8"), "kept\n");
      assert.equal(existsSync(join(dir, "lost+found")), false);
      assert.equal(fill(join(dir, "big"), 20 * MiB), "ENOSPC");
      rmSync(join(dir, "big"));
      assert.equal(fill(join(dir, "small"), 2 * MiB), undefined, "within the quota a write succeeds");

      // The portal stops: unmounted; it starts again with a bigger quota: mounted, grown, files kept.
      await small.close();
      assert.ok(!isMountPoint(dir));
      const big = new Workspace(tmp, { projects: { pq: 32 * MiB } });
      await big.createProject("pq");
      assert.ok(isMountPoint(dir));
      assert.equal(readFileSync(join(dir, "before.txt"), "utf8"), "kept\n");
      const s = statfsSync(dir);
      assert.ok(s.blocks * s.bsize > 24 * MiB, `grown to ${s.blocks * s.bsize} bytes`);
      assert.equal(fill(join(dir, "mid"), 16 * MiB), undefined, "16 MiB fits the grown volume");
      rmSync(join(dir, "mid"));

      // Shrinking is refused, naming the project and sizes.
      await big.close();
      const smaller = new Workspace(tmp, { projects: { pq: 8 * MiB } });
      await assert.rejects(
        smaller.createProject("pq"),
        /project pq: its quota 8388608 bytes is smaller than its volume/,
      );

      // Deleted: no mount, no loop device on the image, no image.
      await big.createProject("pq");
      const img = big.volumes.image("pq");
      await big.removeProject("pq");
      assert.ok(!isMountPoint(dir));
      assert.equal(existsSync(img), false);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(execFileSync("losetup", ["-j", img], { encoding: "utf8" }).trim(), "");
    });

    test("homes: a default and a per-user quota; ENOSPC past it, others unaffected, deleting frees space", async () => {
      const ws = new Workspace(tmp, { projects: {} }, { default: 8 * MiB, users: { roomy: 24 * MiB } });
      await ws.createHome("hq");
      await ws.createHome("roomy");
      const home = ws.homeDir("hq");
      assert.ok(isMountPoint(home), "the home is a mount point");
      const st = statSync(home);
      assert.equal(st.mode & 0o7777, 0o750, "the volume's root keeps the home's mode");
      assert.equal(existsSync(join(home, "lost+found")), false);
      assert.equal(fill(join(home, "big"), 20 * MiB), "ENOSPC");
      assert.equal(fill(join(ws.homeDir("roomy"), "mid"), 16 * MiB), undefined, "a per-user quota is its own");
      await ws.createProject("other");
      await writeFile(join(ws.projectDir("other"), "still.txt"), "ok\n");
      rmSync(join(home, "big"));
      assert.equal(fill(join(home, "small"), 4 * MiB), undefined, "deleting freed the space");

      // Kept across the portal's stop and start; the user's deletion leaves no mount or image.
      await ws.close();
      assert.ok(!isMountPoint(home));
      await ws.createHome("hq");
      assert.ok(isMountPoint(home));
      assert.equal(statSync(join(home, "small")).size, 4 * MiB);
      const img = ws.homeVolumes.image("hq");
      await ws.removeHome("hq");
      await ws.removeHome("roomy");
      assert.ok(!isMountPoint(home));
      assert.equal(existsSync(img), false);
      assert.equal(existsSync(home), false);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(execFileSync("losetup", ["-j", img], { encoding: "utf8" }).trim(), "");
    });
  });
});
