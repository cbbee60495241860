// mrg compile, run as a user would: XIR on stdout, diagnostics on stderr as
// file:line:col, exit status 1 on errors, --out, --graph and --canonical.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { canonicalJSON, validateExperiment } from "@merge/xir";

const root = join(import.meta.dirname, "..", "..", "..");
const mrg = join(root, "packages", "cli", "src", "mrg.ts");
const tmp = mkdtempSync(join(tmpdir(), "mrg-compile-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Without a type-check server, which would outlive the test (one test below starts and stops one). */
const noServer = { ...process.env, MERGE_TYPECHECK_SERVER: "0" };

function run(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", mrg, "compile", ...args], {
    cwd: root,
    encoding: "utf8",
    env: noServer,
  });
}

test("a good model: XIR JSON on stdout, exit 0", () => {
  const r = run("examples/demo.ts");
  assert.equal(r.status, 0, r.stderr);
  const x = JSON.parse(r.stdout);
  assert.equal(validateExperiment(x).ok, true);
  assert.equal(x.name, "demo");
  assert.equal(x.nodes.length, 4);
  assert.ok(x.nodes.every((n: { sockets: { addrs: string[] }[] }) => n.sockets.every((s) => s.addrs.length === 1)));
});

test("--out and --canonical write the canonical form to a file", () => {
  const out = join(tmp, "demo.json");
  const r = run("examples/demo.ts", "--out", out, "--canonical");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "");
  const text = readFileSync(out, "utf8");
  assert.equal(text, `${canonicalJSON(JSON.parse(text))}\n`);
});

test("--graph emits nodes and links for the web UI", () => {
  const r = run("examples/star.ts", "--graph");
  assert.equal(r.status, 0, r.stderr);
  const g = JSON.parse(r.stdout);
  assert.equal(g.nodes.length, 9, "8 nodes and the LAN's hub");
  assert.equal(g.links.length, 8);
  assert.ok(g.links.every((l: { source: string }) => l.source === "lan:lan"));
});

test("a bad model: file:line:col diagnostics on stderr, nothing on stdout, exit 1", () => {
  const r = run("packages/model/test/bad/memory-contradiction.ts");
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.match(
    r.stderr,
    /^packages\/model\/test\/bad\/memory-contradiction\.ts:4:50: error: node a: contradictory constraints, no value satisfies all of: memory\.capacity >= 8 GiB, memory\.capacity <= 4 GiB \[contradiction\]$/m,
  );
  assert.match(r.stderr, /1 error\(s\)/);
});

test("warnings are printed but do not fail the compile", () => {
  const r = run("packages/model/test/bad/unknown-image.ts");
  assert.equal(r.status, 0);
  assert.match(r.stderr, /unknown-image\.ts:4:25: warning: node a: unknown image "bookwrom"/);
  assert.equal(JSON.parse(r.stdout).nodes[0].image, "bookwrom");
});

test("a missing file is an error, not a crash", () => {
  const r = run("no/such/model.ts");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no such model file: no\/such\/model\.ts \[no-file\]/);
});

// A model outside the project, compiled by the installed `mrg` from the model's own directory.
const bin = join(root, "packages", "cli", "bin", "mrg");
const HELLO = `import { Network, addressing, routing, cores } from "@merge/model";
import { pair } from "./pair.ts";
const net = new Network("hello", addressing.ipv4, routing.static);
pair(net, cores.ge(2));
export default net;
`;
const PAIR = `import type { Network, NodeOption } from "@merge/model";
export function pair(net: Network, ...o: NodeOption[]) { net.connect([net.node("a", ...o), net.node("b")]); }
`;

function outside(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "mrg-outside-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

test("a model outside the project finds @merge/model from mrg's own installation", (t) => {
  const dir = outside({ "hello.ts": HELLO, "pair.ts": PAIR });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(bin, ["compile", "hello.ts"], { cwd: dir, encoding: "utf8", env: noServer });
  assert.equal(r.status, 0, r.stderr);
  const x = JSON.parse(r.stdout);
  assert.deepEqual(
    x.nodes.map((n: { name: string }) => n.name),
    ["a", "b"],
  );
});

test("only @merge/model is lent to an outside model: other project packages stay unresolved", (t) => {
  const dir = outside({ "m.ts": `import "@merge/realize";\n${HELLO}`, "pair.ts": PAIR });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(bin, ["compile", "m.ts"], { cwd: dir, encoding: "utf8", env: noServer });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /Cannot find package '@merge\/realize'/);
});

test("a model with its own package.json and node_modules uses its own @merge/model", (t) => {
  const dir = outside({
    "package.json": '{"type":"module"}\n',
    "hello.ts": HELLO,
    "pair.ts": PAIR,
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "node_modules", "@merge"), { recursive: true });
  symlinkSync(join(root, "packages", "model"), join(dir, "node_modules", "@merge", "model"), "dir");
  symlinkSync(join(root, "packages", "xir"), join(dir, "node_modules", "@merge", "xir"), "dir");
  const r = spawnSync(bin, ["compile", "hello.ts"], { cwd: dir, encoding: "utf8", env: noServer });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).nodes.length, 2);
});

test("mrg compile type-checks through a server it starts, which stays correct after edits", async (t) => {
  const dir = outside({ "units.ts": HELLO, "pair.ts": PAIR });
  const cache = join(dir, "cache");
  const env = { ...process.env, XDG_CACHE_HOME: cache, MERGE_TYPECHECK_SERVER: "1" };
  let pidFile: string | undefined;
  t.after(() => {
    if (pidFile && existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, "utf8")), "SIGTERM");
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const first = spawnSync(bin, ["compile", "units.ts"], { cwd: dir, encoding: "utf8", env });
  assert.equal(first.status, 0, first.stderr);
  const found = async () => {
    for (let i = 0; i < 600; i++) {
      const f = readdirSync(join(cache, "merge", "typecheck")).find((n) => n.endsWith(".sock.pid"));
      if (f) return join(cache, "merge", "typecheck", f);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail("no type-check server started");
  };
  pidFile = await found();
  const pid = Number(readFileSync(pidFile, "utf8"));
  writeFileSync(
    join(dir, "units.ts"),
    HELLO.replace("cores.ge(2)", "cores.ge(2), memory.ge(ms(10))").replace("cores }", "cores, memory, ms }"),
  );
  const second = spawnSync(bin, ["compile", "units.ts"], { cwd: dir, encoding: "utf8", env });
  assert.equal(second.status, 1);
  assert.match(second.stderr, /^units\.ts:4:\d+: error: a size was expected, not a duration/m);
  process.kill(pid, 0); // still serving
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(existsSync(pidFile), false, "the server removes its socket and pid file when it stops");
});

test("a JavaScript model outside the project gets the unit errors at run time", (t) => {
  const dir = outside({
    "m.js": `import { Network, memory, ms } from "@merge/model";\nconst net = new Network("js");\nnet.connect([net.node("a", memory.ge(ms(10))), net.node("b")]);\nexport default net;\n`,
  });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(bin, ["compile", "m.js"], { cwd: dir, encoding: "utf8", env: noServer });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^m\.js:3:35: error: memory\.capacity >= 10 ms: a size was expected, not a duration/m);
});
