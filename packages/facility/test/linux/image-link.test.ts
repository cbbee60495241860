// Two nodes of one image set up at once link the cached image into the data directory once:
// both get the finished directory, complete, and no temporary copy is left. (Each used to copy
// into one shared temporary directory and remove the other's work and the finished image: a
// node then started on a removed lower directory, `mount overlay: No such file or directory`.)
// A small image made here in a cache of the test's own; no root needed.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const tmp = mkdtempSync(join(tmpdir(), "mrg-image-link-"));
process.env.MERGE_IMAGE_CACHE = join(tmp, "cache");
after(() => rmSync(tmp, { recursive: true, force: true }));

test("concurrent requests for one cached image share one link", async () => {
  const { imageDir } = await import("../../src/linux/image.ts");
  const img = join(tmp, "cache", "tiny");
  for (let i = 0; i < 200; i++) {
    mkdirSync(join(img, "usr", "share", `d${i % 20}`), { recursive: true });
    writeFileSync(join(img, "usr", "share", `d${i % 20}`, `f${i}`), `file ${i}\n`);
  }
  mkdirSync(join(img, "etc", "mrg"), { recursive: true });
  writeFileSync(join(img, "etc", "mrg", "boot"), "#!/bin/sh\n");
  const data = join(tmp, "data");
  const dirs = await Promise.all([1, 2, 3, 4].map(() => imageDir(data, "tiny")));
  const dir = join(data, "images", "tiny");
  assert.deepEqual(dirs, [dir, dir, dir, dir]);
  assert.ok(existsSync(join(dir, "usr", "share", "d19", "f199")), "the linked image is complete");
  assert.ok(existsSync(join(dir, "etc", "mrg", "boot")));
  assert.deepEqual(readdirSync(join(data, "images")), ["tiny"], "no temporary copy left");
  // Linked already: asked again, the same directory, nothing copied.
  assert.equal(await imageDir(data, "tiny"), dir);
});
