import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { openStore } from "@merge/store";
import { PortalClient } from "../src/client/index.ts";
import { keys } from "../src/objects.ts";
import { readAllocations } from "../src/realization.ts";
import { chainXir } from "./harness.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
let dataDir: string;
const children = new Set<ChildProcess>();

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "merge-portal-crash-"));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await rm(dataDir, { recursive: true, force: true });
});

async function startChild(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, "--data", dataDir, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stderr?.on("data", (b) => {
    err += b;
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (b) => {
      out += b;
      const m = /PORTAL (\{.*\})/.exec(out);
      if (m) resolve((JSON.parse(m[1] as string) as { url: string }).url);
    });
    child.on("exit", (code) => reject(new Error(`portal exited (${code}): ${err}`)));
  });
  return { child, url };
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.on("exit", () => resolve());
  });
}

test("SIGKILL mid-work, restart: nothing acknowledged is lost, nothing is half-written", async (t) => {
  const first = await startChild();
  const { password } = JSON.parse(await readFile(join(dataDir, "admin-credentials"), "utf8")) as { password: string };
  const anon = new PortalClient(first.url);
  const admin = new PortalClient(first.url, (await anon.login("admin", password)).token);
  await anon.register({ name: "quinn", email: "q@example.org", password: "quinn-password" });
  await admin.setUserState("quinn", "active");
  const quinn = new PortalClient(first.url, (await anon.login("quinn", "quinn-password")).token);
  await quinn.createExperiment("quinn", { name: "base" });
  await quinn.push("quinn", "base", chainXir("base", 2), "xir");

  // Work in flight: projects, experiments, pushes and realizations, as fast as they go.
  const acknowledged: string[] = [];
  let stop = false;
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      try {
        if (i % 4 === 0) {
          await quinn.createProject({ name: `p${w}x${i}` });
          acknowledged.push(`project p${w}x${i}`);
        } else if (i % 4 === 1) {
          await quinn.createExperiment("quinn", { name: `e${w}x${i}` });
          acknowledged.push(`experiment e${w}x${i}`);
        } else if (i % 4 === 2) {
          const r = await quinn.push("quinn", "base", chainXir("base", 2), "xir");
          acknowledged.push(`revision ${r.number}`);
        } else {
          const r = await quinn.realize("quinn", "base", { name: `r${w}x${i}`, accept: true });
          if (r.state === "accepted") acknowledged.push(`realization r${w}x${i}`);
        }
      } catch {
        return; // the portal died under us
      }
    }
  };
  const workers = Array.from({ length: 6 }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, 1500));
  first.child.kill("SIGKILL");
  stop = true;
  await Promise.all(workers);
  await killed(first.child);
  t.diagnostic(`${acknowledged.length} operations acknowledged before SIGKILL`);
  assert.ok(acknowledged.length > 5, "work was in flight");

  // Restart on the same data directory.
  const second = await startChild();
  const q2 = new PortalClient(second.url, quinn.token);
  const projects = new Set((await q2.projects()).map((p) => p.name));
  const exps = new Set((await q2.experiments("quinn")).map((e) => e.name));
  const revs = await q2.revisions("quinn", "base");
  const rlzs = new Set((await q2.realizations("quinn", "base")).map((r) => r.name));
  for (const a of acknowledged) {
    const [kind, name] = a.split(" ") as [string, string];
    if (kind === "project") assert.ok(projects.has(name), a);
    if (kind === "experiment") assert.ok(exps.has(name), a);
    if (kind === "revision")
      assert.ok(
        revs.some((r) => r.number === Number(name)),
        a,
      );
    if (kind === "realization") assert.ok(rlzs.has(name), a);
  }
  // Revisions: the counter matches the stack, 1..n, every one with its body.
  const base = await q2.experiment("quinn", "base");
  assert.deepEqual(
    revs.map((r) => r.number),
    Array.from({ length: base.revisions }, (_, i) => i + 1),
  );
  for (const r of revs) assert.equal((await q2.revision("quinn", "base", r.number)).revision.number, r.number);
  // Every project has its directory.
  for (const p of projects) assert.ok(existsSync(join(dataDir, "proj", p)), p);
  second.child.kill("SIGKILL");
  await killed(second.child);

  // Allocations and realizations agree exactly: no orphan reservation, no realization without its resources.
  const store = openStore({ backend: "sqlite", dir: join(dataDir, "store") });
  try {
    const table = (await readAllocations(store)).table;
    const held = [...table.realizations()].sort();
    const records = (await store.range(keys.allRealizations())).map(
      (kv) => JSON.parse(kv.value) as { name: string; state: string },
    );
    const live = records
      .filter((r) => r.state !== "failed")
      .map((r) => `${r.name}.base.quinn`)
      .sort();
    assert.deepEqual(held, live);
  } finally {
    await store.close();
  }
});
