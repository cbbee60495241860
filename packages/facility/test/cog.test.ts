// cog against a real facility store (sqlite): tables and --json output, and the
// operator interventions changing what rex sees.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openStore, type Store } from "@merge/store";
import { Driver } from "../src/driver.ts";
import { keys, type NodeRecord } from "../src/task.ts";
import { startRex, statusIs } from "./fixture.ts";

const tmp = mkdtempSync(join(tmpdir(), "mrg-cog-"));
const storeUrl = `sqlite://${join(tmp, "store")}`;
let store: Store;

function cog(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = new URL("../../cli/src/cog.ts", import.meta.url).pathname;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ["--import", "tsx", cli, ...args, "--store", storeUrl]);
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d) => (stdout += d));
    c.stderr.on("data", (d) => (stderr += d));
    c.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

before(async () => {
  store = openStore(storeUrl);
  const s = synthetic(6, { mzid: "cog.exp.proj", lanSize: 3 });
  const driver = new Driver(store);
  const { rex } = await startRex(store, {
    durations: { imaging: 0, power: 0, network: 0, infrapod: 0 },
    failures: [{ method: "linkCreate", target: "lan1", message: "leaf0 refused vlan 101" }],
  });
  await driver.materialize("cog.exp.proj", fragmentsFor(s.realization, s.experiment, s.facility));
  await statusIs(driver, "cog.exp.proj", "error");
  await rex.idle();
  await rex.stop();
});

after(async () => {
  await store?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test("cog list tasks / show tasks / show mz, as tables and as JSON", async () => {
  const tasks = await cog(["list", "tasks", "--json"]);
  assert.equal(tasks.code, 0, tasks.stderr);
  const pending = JSON.parse(tasks.stdout) as { task: { id: string }; errors: number; pending: number }[];
  assert.deepEqual(
    pending.map((p) => [p.task.id, p.errors, p.pending]),
    [["network", 1, 1]],
  );

  const table = await cog(["show", "tasks", "cog.exp.proj"]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /link-lan1.*link\.create.*error.*leaf0 refused vlan 101/);
  assert.doesNotMatch(table.stdout, /setup-m0/, "completed actions only with --all");
  const all = JSON.parse((await cog(["show", "tasks", "cog.exp.proj", "--all", "--json"])).stdout) as {
    actions: unknown[];
  };
  const pendingOnly = JSON.parse((await cog(["show", "tasks", "cog.exp.proj", "--json"])).stdout) as {
    actions: unknown[];
  };
  assert.ok(all.actions.length > pendingOnly.actions.length);

  const mz = JSON.parse((await cog(["show", "mz", "cog.exp.proj", "--json"])).stdout) as {
    status: string;
    infrapod: { serviceAddress: string };
    nodes: unknown[];
    links: { link: string; error?: string }[];
  };
  assert.equal(mz.status, "error");
  assert.equal(mz.infrapod.serviceAddress, "172.31.0.1");
  assert.equal(mz.nodes.length, 6);
  assert.equal(mz.links.find((l) => l.link === "lan1")?.error, "leaf0 refused vlan 101");

  const bad = await cog(["show", "mz", "Nope"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /'Nope' is not 'realization\.experiment\.project'/);
});

test("cog clear, mask and complete change what rex will do", async () => {
  const cleared = await cog(["clear", "cog.exp.proj", "network/link-lan1"]);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(cleared.stdout, /cleared 1 action in error/);
  const masked = JSON.parse((await cog(["mask", "cog.exp.proj", "network/link-lan1", "--json"])).stdout) as {
    masked: boolean;
  }[];
  assert.equal(masked[0]?.masked, true);
  const done = await cog(["complete", "cog.exp.proj", "network", "--json"]);
  const completed = JSON.parse(done.stdout) as { id: string; completedBy: string }[];
  assert.ok(completed.some((a) => a.completedBy === "manual"));
  const st = await new Driver(store).status("cog.exp.proj");
  assert.equal(st.summary.status, "active");
  assert.equal(st.summary.masked, 1);
  const nope = await cog(["mask", "cog.exp.proj", "network/ghost"]);
  assert.equal(nope.code, 1);
  assert.match(nope.stderr, /no action matching 'network\/ghost'/);
});

test("cog list nodes shows nodes out of their target state and not in flight", async () => {
  const rec: NodeRecord = { resource: "m4", current: "setup", target: "ready", mzid: "cog.exp.proj", updated: "now" };
  await store.put(keys.node("m4"), JSON.stringify(rec));
  const out = JSON.parse((await cog(["list", "nodes", "--json"])).stdout) as NodeRecord[];
  assert.deepEqual(
    out.map((n) => [n.resource, n.current, n.target]),
    [["m4", "setup", "ready"]],
  );
});

test("cog dematerialize by hand queues the teardown DAG", async () => {
  const r = await cog(["dematerialize", "cog.exp.proj"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /teardown actions queued/);
  const st = await new Driver(store).status("cog.exp.proj");
  assert.equal(st.summary.status, "dematerializing");
  assert.ok(st.tasks.every((t) => t.phase === "teardown"));
});
