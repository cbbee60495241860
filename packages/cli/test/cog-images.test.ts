// cog images build|list, run as the operator runs them: a subprocess on a
// temporary data directory. Only busybox is really built here (milliseconds,
// from the host's busybox-static). Debian images are NOT built in tests:
// debootstrap downloads from the Debian mirror, and nothing may be downloaded
// at test time; the unreachable-mirror error is checked against a closed
// loopback port instead, which fails before debootstrap would start.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort } from "@merge/facility";
import { treeBytes } from "../src/commands/cog-images.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const cogPath = join(root, "packages/cli/src/cog.ts");
// An image cache of its own: what this host has built in /var/cache/merge does not show here.
const cache = mkdtempSync(join(tmpdir(), "cog-images-cache-"));

function cog(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, MERGE_IMAGE_CACHE: cache };
    execFile(process.execPath, ["--import", "tsx", cogPath, ...args], { cwd: root, env }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe("cog images", () => {
  const dir = mkdtempSync(join(tmpdir(), "cog-images-test-"));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });

  it("list on an empty data dir says nothing is built and how to build", async () => {
    const r = await cog("images", "list", "--data-dir", dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no images built in .* or .*cog-images-cache-.* \(cog images build busybox\|bookworm/);
    const j = await cog("images", "list", "--data-dir", dir, "--json");
    assert.deepEqual(JSON.parse(j.stdout), []);
  });

  it("build busybox makes a bootable image that list shows with its size", async () => {
    const r = await cog("images", "build", "busybox", "--data-dir", dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /building busybox into /);
    assert.match(r.stdout, /built busybox: .*images\/busybox, [\d.]+ (KiB|MiB)/);
    const img = join(dir, "images", "busybox");
    assert.ok(existsSync(join(img, "etc/mrg/boot")), "the merge boot is installed");
    assert.ok(readdirSync(join(img, "bin")).includes("udhcpc"), "busybox applets are linked");

    const l = await cog("images", "list", "--data-dir", dir, "--json");
    assert.equal(l.code, 0, l.stderr);
    const images = JSON.parse(l.stdout) as { name: string; path: string; bytes: number }[];
    assert.deepEqual(
      images.map((i) => [i.name, i.path]),
      [["busybox", img]],
    );
    // Two copies of the busybox binary (the applets' and the boot's), so at least twice its size.
    assert.ok(images[0]!.bytes > 2 * 500_000, `busybox image is ${images[0]!.bytes} bytes`);
    const table = await cog("images", "list", "--data-dir", dir);
    assert.match(table.stdout, /^IMAGE\s+SIZE\s+BUILT\s+PATH$/m);
    assert.match(table.stdout, /^busybox\s+[\d.]+ MiB\s+\d{4}-\d\d-\d\dT/m);
    assert.match(table.stdout, /not built: bookworm, trixie, bullseye/);
  });

  it("refuses unknown images and an unreachable mirror with a clear error, building nothing", async () => {
    const bad = await cog("images", "build", "windows", "--data-dir", dir);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown image "windows": expected one of busybox, bookworm, trixie, bullseye/);
    const port = await freePort();
    const off = await cog(
      "images",
      "build",
      "bookworm",
      "--data-dir",
      dir,
      "--mirror",
      `http://127.0.0.1:${port}/debian`,
    );
    assert.equal(off.code, 2);
    assert.ok(
      off.stderr.includes(
        `the Debian mirror is unavailable (http://127.0.0.1:${port}/debian/dists/bookworm/Release: ECONNREFUSED)`,
      ),
      off.stderr,
    );
    assert.deepEqual(readdirSync(join(dir, "images")), ["busybox"], "no partial image is left");
    assert.deepEqual(readdirSync(cache), [], "nor in the image cache");
  });

  // debootstrap mounts /proc inside the tree it builds; the progress ticker walked into
  // it and died on EACCES (/proc/1/cwd), ending a fresh machine's setup without an image.
  it("sizes a tree without entering mounts inside it, counting hard links once", {
    skip: process.getuid?.() !== 0 && "needs root to mount",
  }, () => {
    const tree = mkdtempSync(join(tmpdir(), "cog-images-tree-"));
    const proc = join(tree, "proc");
    mkdirSync(proc);
    writeFileSync(join(tree, "a"), Buffer.alloc(1000));
    linkSync(join(tree, "a"), join(tree, "a-again"));
    mkdirSync(join(tree, "sub"));
    writeFileSync(join(tree, "sub", "b"), Buffer.alloc(234));
    execFileSync("mount", ["-t", "proc", "proc", proc]);
    try {
      assert.equal(treeBytes(tree), 1234);
      assert.equal(treeBytes(join(tree, "gone")), 0, "a tree not there yet is empty");
    } finally {
      execFileSync("umount", [proc]);
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
