/**
 * The event loop is never hostage to a compile: while the biggest model the
 * portal accepts (an XIR of about 8 MB, a 55,000-node LAN) compiles, /health
 * and list calls still answer promptly. And a burst of pushes is queued or
 * refused with 429, never failed at the time limit, leaving no scratch behind.
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { after, before, describe, test } from "node:test";
import { availableConfinement, SCRATCH_PREFIX } from "@merge/model";
import { ApiError, type PortalClient } from "../src/client/index.ts";
import { type Harness, startHarness } from "./harness.ts";
import { lansXir } from "./size.ts";

/** Latencies of `call`, every `everyMs`, until `done` settles. */
async function sample(call: () => Promise<unknown>, done: Promise<unknown>, everyMs: number): Promise<number[]> {
  let finished = false;
  void done.finally(() => {
    finished = true;
  });
  const out: number[] = [];
  while (!finished) {
    const t = performance.now();
    await call();
    out.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return out;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

describe("compiles off the event loop", () => {
  let h: Harness;
  let ann: PortalClient;
  before(async () => {
    // A loaded 2-core test box compiles slowly (at the lowest priority): the time limit is not what is tested here.
    h = await startHarness({ compile: { timeoutMs: 600_000 } });
    ann = await h.user("ann");
    await ann.createExperiment("ann", { name: "big" });
  });
  after(() => h.stop());

  test("/health and a list call answer while a 55,000-node XIR compiles", async (t) => {
    const xir = JSON.stringify(lansXir("big", 1, 55_000));
    assert.ok(xir.length > 5_000_000 && xir.length < 8 * 1024 * 1024, `${xir.length} bytes`);
    // A raw request whose answer is only checked, not parsed: the portal runs in this process, and
    // parsing megabytes here would block its event loop in the test, not in the portal.
    // node:http, not fetch: fetch gives up waiting for the answer's headers after 300 s, and a loaded
    // test box may take longer; how long the compile takes is not what this test asks.
    const compiling = new Promise<{ ok: boolean; head: string }>((resolve, reject) => {
      const req = httpRequest(
        `${h.url}/compile`,
        { method: "POST", headers: { authorization: `Bearer ${h.admin.token}`, "content-type": "application/json" } },
        (res) => {
          const parts: Buffer[] = [];
          res.on("data", (d: Buffer) => parts.push(d));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            resolve({ ok: status >= 200 && status < 300, head: Buffer.concat(parts).subarray(0, 300).toString() });
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ source: xir, lang: "xir" }));
    });
    await new Promise((r) => setTimeout(r, 300));
    const [health, lists] = await Promise.all([
      sample(() => h.anon.health(), compiling, 20),
      sample(() => ann.experiments("ann"), compiling, 20),
    ]);
    const compiled = await compiling;
    assert.ok(compiled.ok && compiled.head.startsWith('{"status":"compiled"'), compiled.head);
    assert.ok(health.length >= 5, `only ${health.length} health calls during the compile`);
    // The target is 100 ms (npm run bench -- compile-confined measures it); the bound here is loose
    // for a loaded 2-core test box, and still far below the seconds a compile on the event loop blocks.
    const all = [...health, ...lists];
    const p90 = quantile(all, 0.9);
    t.diagnostic(
      `${all.length} calls: p50 ${quantile(all, 0.5).toFixed(1)} ms, p90 ${p90.toFixed(1)} ms, max ${Math.max(...all).toFixed(1)} ms`,
    );
    assert.ok(p90 < 400, `p90 ${p90.toFixed(0)} ms over ${health.length + lists.length} calls`);
  });

  test("50 simultaneous pushes of a valid model: each compiles or gets 429 with Retry-After, none fails", {
    skip: availableConfinement() === "none" && "model programs are refused without confinement",
  }, async () => {
    const bo = await h.user("bo");
    await bo.createExperiment("bo", { name: "burst" });
    const source =
      'import { Network } from "@merge/model";\nconst net = new Network("burst");\nnet.connect([net.node("a"), net.node("b")]);\nexport default net;\n';
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        bo.push("bo", "burst", source, "ts", "burst.ts").then(
          (rev) => ({ rev, err: undefined }),
          (err: unknown) => ({ rev: undefined, err }),
        ),
      ),
    );
    let compiled = 0;
    let refused = 0;
    for (const r of results) {
      if (r.rev) {
        assert.equal(r.rev.status, "compiled", JSON.stringify(r.rev.errors));
        compiled++;
      } else {
        assert.ok(r.err instanceof ApiError, String(r.err));
        assert.equal(r.err.status, 429, r.err.message);
        assert.match(r.err.message, /compiles waiting|at capacity/);
        refused++;
      }
    }
    assert.ok(compiled >= 2, `${compiled} compiled`);
    assert.equal(compiled + refused, 50);
    const left = readdirSync(tmpdir()).filter((d) => d.startsWith(`${SCRATCH_PREFIX}${process.pid}-`));
    assert.deepEqual(left, []);
  });
});
