// Leases through the real `mrg` (a subprocess) against a real portal and a
// facility on the sim backend: --duration, the time left in list/show,
// extension and its refusal beyond the maximum, and expiry of a materialized
// realization: the portal dematerializes it on the facility, then relinquishes
// it, says so in the experiment's history and in `mrg notifications`.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type PortalStack, startPortalStack } from "@merge/e2e/portal-stack";
import { SimBackend } from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";

const tmp = mkdtempSync(join(tmpdir(), "mrg-lease-"));
let stack: PortalStack;

before(async () => {
  stack = await startPortalStack(tmp, new SimBackend({ durations: { imaging: 5, power: 2, network: 1, infrapod: 2 } }));
  await stack.admin.createExperiment("admin", { name: "demo" });
  assert.equal((await stack.mrg(["push", "examples/demo.ts", "demo.admin"])).code, 0);
});

after(() => closeThenRemove(tmp, stack));

test("mrg realize --duration, time left, extend within the maximum, and a clear refusal beyond", async () => {
  const bad = await stack.mrg(["realize", "r9.demo.admin", "--accept", "--duration", "soon"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--duration: 'soon' is not a duration of at least a minute; write e\.g\. 90m, 48h or 7d/);
  const r = await stack.mrg(["realize", "r1.demo.admin", "--accept", "--duration", "2d"]);
  assert.equal(r.code, 0, r.stderr);
  const list = await stack.mrg(["list", "realizations", "demo.admin"]);
  assert.match(list.stdout, /r1\.demo\.admin .*accepted.* (1d23h|2d) /);
  const long = await stack.mrg(["realize", "r2.demo.admin", "--accept", "--duration", "60d"]);
  assert.equal(long.code, 1);
  // Administrators are not above the lease maximum unless the policy's roles section says so.
  assert.match(long.stderr, /a lease of 60d is longer than the 30d the portal's policy allows; ask for at most 30d/);
  const ext = await stack.mrg(["realization", "extend", "r1.demo.admin", "24h"]);
  assert.equal(ext.code, 0, ext.stderr);
  assert.match(ext.stdout, /(2d23h|3d)/);
  const over = await stack.mrg(["realization", "extend", "r1.demo.admin", "28d"]);
  assert.equal(over.code, 1);
  assert.match(
    over.stderr,
    /extending r1\.demo\.admin by 28d would hold it until .*; the portal's policy allows at most 30d: extend by at most 2\dd/,
  );
  const show = await stack.mrg(["show", "realization", "r1.demo.admin"]);
  assert.match(show.stdout, /left/);
  assert.match(show.stdout, /(2d23h|3d)/);
  const hist = await stack.mrg(["show", "history", "demo.admin", "--json"]);
  assert.deepEqual(
    (JSON.parse(hist.stdout) as { kind: string }[]).map((e) => e.kind),
    ["lease-extended"],
  );
});

test("a materialized realization whose lease runs out is dematerialized on the facility, then relinquished", async () => {
  const up = await stack.mrg(["materialize", "r1.demo.admin", "--timeout", "60"]);
  assert.equal(up.code, 0, up.stderr);
  const { ctx } = stack.portal.portal;
  const r = await stack.admin.realization("admin", "demo", "r1");
  const at = Date.parse(r.expires as string);
  // The keeper's clock is moved past the expiry; the facility's teardown is real.
  let released = 0;
  for (let i = 0; i < 120 && released === 0; i++) {
    released = (await ctx.leases.sweep(at + 1000)).released;
    if (released === 0) await new Promise((res) => setTimeout(res, 500));
  }
  assert.equal(released, 1, "relinquished once the facility confirmed the teardown");
  const gone = await stack.mrg(["show", "realization", "r1.demo.admin"]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /r1\.demo\.admin was relinquished by the portal when its lease ran out/);
  const hist = await stack.mrg(["show", "history", "demo.admin"]);
  assert.match(hist.stdout, /lease-expired/);
  assert.match(hist.stdout, /reclaimed/);
  const notes = await stack.mrg(["notifications"]);
  assert.equal(notes.code, 0, notes.stderr);
  assert.match(notes.stdout, /lease-expired +lease ran out at .*: dematerializing, then relinquishing/);
  assert.match(notes.stdout, /reclaimed +r1\.demo\.admin: lease ran out/);
  // Nothing of it is left on the facility.
  const mz = await stack.mrg(["show", "materialization", "r1.demo.admin"]);
  assert.equal(mz.code, 1);
});
