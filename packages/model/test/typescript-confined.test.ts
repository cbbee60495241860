/**
 * The confined TypeScript runner (runTypeScriptSource): a model compiles as it
 * does unconfined, diagnostics name the user's file, and the namespace holds
 * by itself (a child process without Node's permission model still sees only
 * the sandbox's root). The unsafe opt-out is explicit.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  availableConfinement,
  ConfinementError,
  requireConfinement,
  SCRATCH_PREFIX,
  UNSAFE_ENV,
} from "../src/confinement.ts";
import { runTypeScriptSource } from "../src/typescript.ts";

const hello = readFileSync(new URL("../../../examples/hello.ts", import.meta.url), "utf8");
const repo = fileURLToPath(new URL("../../..", import.meta.url));
const have = availableConfinement();

describe("confined TypeScript models", { skip: have === "none" && "no confinement on this host" }, () => {
  test("a model compiles confined, as it does unconfined", async () => {
    const r = await runTypeScriptSource(hello, "hello.ts");
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    assert.equal(r.confinement, have);
    assert.deepEqual(
      r.xir?.nodes.map((n) => n.sockets[0]?.addrs[0]),
      ["10.0.0.1/30", "10.0.0.2/30"],
    );
  });

  test("diagnostics name the user's file and line", async () => {
    const r = await runTypeScriptSource(`${hello}\nthrow new Error("boom");\n`, "mine.ts");
    assert.equal(r.ok, false);
    const d = r.diagnostics.find((x) => x.severity === "error");
    assert.match(d?.message ?? "", /boom/);
    assert.equal(d?.location?.file, "mine.ts");
    assert.equal(d?.location?.line, hello.split("\n").length + 1);
  });

  test("the namespace holds without Node's permission model: a child node sees only the sandbox root", async (t) => {
    // A host file in the temp directory (a checkout may itself live under /tmp, so not /tmp itself).
    const hostFile = `${tmpdir()}/merge-host-probe-${process.pid}`;
    writeFileSync(hostFile, "host");
    t.after(() => rmSync(hostFile, { force: true }));
    const probe = `import { existsSync } from "node:fs"; const paths = ${JSON.stringify(["/etc/passwd", `${repo}package.json`, "/root", hostFile, "/proc/self", "/bin/sh", `${repo}packages/model/src/network.ts`])}; process.stdout.write(paths.map((p) => (existsSync(p) ? "seen " : "hidden ") + p).join("\\n"));`;
    const model = `import { execFileSync } from "node:child_process";\nconst seen = String(execFileSync(process.execPath, ["--input-type=module", "-e", ${JSON.stringify(probe)}]));\nthrow new Error(seen);\n`;
    const r = await runTypeScriptSource(model, "probe.ts");
    const message = r.diagnostics.map((d) => d.message).join("\n");
    for (const p of ["/etc/passwd", `${repo}package.json`, "/root", hostFile, "/proc/self", "/bin/sh"]) {
      assert.match(message, new RegExp(`hidden ${p}`), message);
    }
    // The modeling library is there, read-only: that is what the model is compiled with.
    assert.match(message, /seen .*network\.ts/);
  });

  test("the user-namespace confinement (what a portal not running as root uses) works too", async () => {
    const r = await runTypeScriptSource(hello, "hello.ts", { confinement: "userns" });
    assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
    assert.equal(r.confinement, "userns");
  });

  test("no scratch directory is left behind", () => {
    assert.deepEqual(
      readdirSync(tmpdir()).filter((d) => d.startsWith(`${SCRATCH_PREFIX}${process.pid}-`)),
      [],
    );
  });
});

test("running unconfined needs the explicit, documented opt-out", () => {
  const before = process.env[UNSAFE_ENV];
  try {
    delete process.env[UNSAFE_ENV];
    assert.throws(
      () => requireConfinement("none"),
      (e: unknown) => e instanceof ConfinementError && /set MERGE_UNSAFE_UNCONFINED_MODELS=1/.test(e.message),
    );
    process.env[UNSAFE_ENV] = "1";
    assert.equal(requireConfinement("none"), "none");
  } finally {
    if (before === undefined) delete process.env[UNSAFE_ENV];
    else process.env[UNSAFE_ENV] = before;
  }
});
