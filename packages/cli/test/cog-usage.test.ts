// The operator on call and the mistakes made at 3 a.m.: the real `cog` binary
// (bin/cog, a subprocess) against a real facility store (sqlite) holding a
// materialization with an action in error, made by the driver and rex on the
// sim backend. Messages say what was wrong and what is valid; exit status is
// 1 for failures and 2 for usage errors; lists are JSON with --json.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Driver, Rex, SimBackend, synthetic } from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";
import { fragmentsFor } from "@merge/materialize";
import { openStore, type Store } from "@merge/store";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = join(root, "packages/cli/bin/cog");
const tmp = mkdtempSync(join(tmpdir(), "cog-usage-"));
const storeUrl = `sqlite://${join(tmp, "store")}`;
const MZ = "r1.oncall.proj";
let store: Store;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs bin/cog from `cwd` (default: a directory with no facility in it) with COG_STORE unset. */
function cog(args: string[], env: Record<string, string> = {}, cwd = tmp): Promise<Run> {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!("COG_STORE" in env)) delete e.COG_STORE;
  if (!("MERGE_DATA_DIR" in env)) delete e.MERGE_DATA_DIR;
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, env: e }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

before(async () => {
  store = openStore(storeUrl);
  const s = synthetic(4, { mzid: MZ, lanSize: 2 });
  const rex = new Rex({
    store,
    backend: new SimBackend({
      durations: { imaging: 0, power: 0, network: 0, infrapod: 0 },
      failures: [{ method: "linkCreate", target: "lan1", message: "leaf0 refused vlan 101" }],
    }),
    leaseTtl: 2,
  });
  await rex.start();
  const driver = new Driver(store);
  await driver.materialize(MZ, fragmentsFor(s.realization, s.experiment, s.facility));
  const end = Date.now() + 15_000;
  while ((await driver.status(MZ)).summary.status !== "error") {
    assert.ok(Date.now() < end, "the materialization reaches its error");
    await new Promise((r) => setTimeout(r, 50));
  }
  await rex.idle();
  await rex.stop();
});

after(() => closeThenRemove(tmp, store));

describe("cog, as the operator on call uses it", () => {
  test("the on-call view: materializations, tasks in error, stray nodes, as JSON and as plain tables", async () => {
    const [mz, tasks, table, viaEnv] = await Promise.all([
      cog(["list", "mz", "--json", "--store", storeUrl]),
      cog(["list", "tasks", "--json", "--store", storeUrl]),
      cog(["show", "tasks", MZ, "--store", storeUrl]),
      cog(["list", "mz"], { COG_STORE: storeUrl }),
    ]);
    for (const r of [mz, tasks, table, viaEnv]) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(mz.stdout) as { mzid: string; status: string; errors: number }[]).map((m) => [
        m.mzid,
        m.status,
        m.errors,
      ]),
      [[MZ, "error", 1]],
    );
    assert.deepEqual(
      (JSON.parse(tasks.stdout) as { task: { mzid: string }; errors: number }[]).map((t) => [t.task.mzid, t.errors]),
      [[MZ, 1]],
    );
    assert.match(table.stdout, /link-lan1.*error.*leaf0 refused vlan 101/);
    // Piped output is for grep and logs: no colour codes.
    assert.ok(!(table.stdout + viaEnv.stdout).includes("\u001b["), "no ANSI escapes");
    assert.match(viaEnv.stdout, new RegExp(`${MZ.replace(/\./g, "\\.")}.*error`));
  });

  test("a materialization the facility does not hold: refused, pointing at 'cog list mz'", async () => {
    const [show, clear] = await Promise.all([
      cog(["show", "mz", "r9.oncall.proj", "--store", storeUrl]),
      cog(["clear", "r9.oncall.proj", "--store", storeUrl]),
    ]);
    for (const r of [show, clear]) {
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /the facility holds no materialization 'r9\.oncall\.proj' \(see 'cog list mz'\)/);
    }
    assert.equal((await new Driver(store).status(MZ)).summary.errors, 1, "nothing changed");
  });

  test("a store that is not there is an error naming it, and is not created", async () => {
    const nowhere = join(tmp, "no-such-facility");
    const [given, byDefault, malformed] = await Promise.all([
      cog(["list", "mz", "--store", `sqlite://${nowhere}`]),
      // No --store and no $COG_STORE: npm start's store under $MERGE_DATA_DIR (or ./.data).
      cog(["list", "tasks"], { MERGE_DATA_DIR: nowhere }),
      cog(["list", "mz", "--store", "facility.db"]),
    ]);
    assert.equal(given.code, 1);
    assert.match(given.stderr, new RegExp(`no facility store at ${nowhere}.*--store <url> or set COG_STORE`));
    assert.equal(byDefault.code, 1);
    assert.match(byDefault.stderr, new RegExp(`no facility store at ${join(nowhere, "facility", "store")}`));
    assert.equal(existsSync(nowhere), false, "a mistyped store is not created");
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /store URL "facility\.db": no scheme; expected sqlite:\/\/\/absolute\/dir/);
  });

  test("usage errors exit 2 with the nearest command; the bare command shows the on-call examples", async () => {
    const [bare, typo, sub, missing, role] = await Promise.all([
      cog([]),
      cog(["lst", "mz"]),
      cog(["show", "mzz", MZ]),
      cog(["clear"]),
      cog(["certs", "make", "--dir", join(tmp, "certs"), "--role", "portl"]),
    ]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /cog list tasks/);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown command 'lst'\n\(Did you mean list\?\)\n\(see 'cog --help'\)/);
    assert.equal(sub.code, 2);
    assert.match(sub.stderr, /Did you mean mz\?\)\n\(see 'cog show --help'\)/);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'mzid'/);
    assert.equal(role.code, 2);
    assert.match(role.stderr, /--role portl: roles are commander, portal, driver/);
    assert.equal(existsSync(join(tmp, "certs")), false);
  });

  test("model check: a facility passes, an experiment model given by mistake says so", async () => {
    const [ok, experiment] = await Promise.all([
      cog(["model", "check", "sample:phobos"]),
      cog(["model", "check", join(root, "examples/demo.ts")]),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /sample:phobos: ok, 0 errors/);
    assert.equal(experiment.code, 1);
    assert.match(experiment.stdout, /this is an experiment model \(nodes and links\), not a facility: .*mrg compile/);
  });
});
