/**
 * Building the UI while a portal may be reading it: two `npm start`s on a new clone both find no UI and
 * both build it. A portal must then see no UI or all of it, never a directory a build is still emptying
 * (a start failed in CI on a file Vite had just removed). Two builds run at once into one directory while
 * it is read over and over, as a starting portal reads it. A build records what went into it, so a start
 * after the sources changed (a `git pull`) builds again instead of serving the old UI.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { buildWeb, INPUTS_FILE, UI_BASE, webUiCurrent } from "../src/build.ts";
import { loadAssets } from "../src/serve.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "merge-web-build-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every asset index.html names is in what a portal loaded: the UI it would serve is whole. */
function assertWhole(assets: ReturnType<typeof loadAssets>): void {
  const index = assets.get(`${UI_BASE}index.html`);
  if (!index) return; // no UI yet: the portal says so, and that is fine
  const named = [...index.body.toString("utf8").matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  assert.ok(named.length > 0, "index.html names its assets");
  for (const path of named) assert.ok(assets.has(path), `${path}, named by index.html, is there`);
}

test("two builds at once into one directory: a reader sees no UI or a whole one, and one build stays", async () => {
  const dist = join(dir, "dist");
  let done = false;
  let reads = 0;
  const builds = Promise.all([buildWeb(dist), buildWeb(dist)]).finally(() => {
    done = true;
  });
  while (!done) {
    const assets = loadAssets(dist); // throws ENOENT if a file vanishes mid-walk
    assertWhole(assets);
    reads++;
    await new Promise((r) => setTimeout(r, 5));
  }
  await builds;
  assert.ok(reads > 10, `read while building (${reads} reads)`);
  assertWhole(loadAssets(dist));
  assert.ok(loadAssets(dist).has(`${UI_BASE}index.html`), "a UI is there after both builds");
  assert.deepEqual(await readdir(dir), ["dist"], "no staging directory is left beside it");
});

test("a leftover directory without index.html is replaced by the build", async () => {
  const dist = join(dir, "leftover");
  await mkdir(join(dist, "assets"), { recursive: true });
  await writeFile(join(dist, "assets", "stale.js"), "old");
  await buildWeb(dist);
  const assets = loadAssets(dist);
  assert.ok(assets.has(`${UI_BASE}index.html`), "built");
  assert.ok(!assets.has(`${UI_BASE}assets/stale.js`), "the leftover is gone");
  assertWhole(assets);
  assert.match(await readFile(join(dist, "index.html"), "utf8"), /<script/);
});

test("a build records its inputs: current while they are unchanged, stale once one differs, and rebuilt then", async () => {
  const dist = join(dir, "dist");
  assert.ok(webUiCurrent(dist), "the build of the first test is current");
  const record = join(dist, INPUTS_FILE);
  const inputs = JSON.parse(await readFile(record, "utf8")) as Record<string, string>;
  assert.ok("index.html" in inputs, "index.html is an input");
  assert.ok(
    Object.keys(inputs).some((f) => f.endsWith(".tsx")),
    `the app's sources are inputs: ${Object.keys(inputs).slice(0, 5)}`,
  );
  assert.ok(
    Object.keys(inputs).some((f) => /node_modules[/]react-dom[/]/.test(f)),
    "the libraries it bundles are inputs",
  );
  assert.ok(!loadAssets(dist).has(`${UI_BASE}${INPUTS_FILE}`), "the record is not served");

  // A build of these sources is kept as it is.
  const before = (await stat(join(dist, "index.html"))).ino;
  await buildWeb(dist);
  assert.equal((await stat(join(dist, "index.html"))).ino, before, "a current build stays in place");

  // One input differs (as after a pull): stale, and the next build replaces it.
  const [first] = Object.keys(inputs);
  await writeFile(record, JSON.stringify({ ...inputs, [first!]: "0".repeat(64) }));
  assert.equal(webUiCurrent(dist), false, "a changed input makes it stale");
  await buildWeb(dist);
  assert.ok(webUiCurrent(dist), "rebuilt");
  assert.notEqual((await stat(join(dist, "index.html"))).ino, before, "the stale build was replaced");
  assert.deepEqual(
    await readdir(dir).then((d) => d.filter((n) => n.startsWith("dist"))),
    ["dist"],
    "nothing left beside it",
  );

  // No record (an older build) or no index.html: stale too.
  await rm(record);
  assert.equal(webUiCurrent(dist), false, "a build without its record is stale");
  assert.equal(webUiCurrent(join(dir, "nowhere")), false, "no build is not current");
});
