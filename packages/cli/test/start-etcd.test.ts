// `npm start -- --store etcd`: a local etcd (Debian's etcd-server) that the portal and the facility
// share, started as start's child with its data under start's data directory, on free loopback ports.
// `mrg` materializes the demo through it, `cog` (no --store) reads the facility's state from it, the
// facility's metrics listener answers a scrape; a second start reuses the etcd's data (the experiment
// is still there); a SIGKILLed start takes its etcd and facility with it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { alive, type Stack, startStack, stopStack } from "./fixtures/start-stack.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));

function cli(program: "mrg" | "cog", portal: string, config: string, cwd: string) {
  return (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, MERGE_PORTAL: portal, MERGE_CONFIG_DIR: config };
      delete env.COG_STORE;
      delete env.MERGE_DATA_DIR;
      const c = spawn(join(root, "packages/cli/bin", program), args, { cwd, env });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d) => (stdout += d));
      c.stderr.on("data", (d) => (stderr += d));
      c.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
}

async function gone(pid: number, ms = 15_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

test("npm start -- --store etcd: portal and facility on a local etcd that lives and dies with start", {
  timeout: 400_000,
}, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-start-etcd-"));
  const data = join(tmp, "data");
  const cfg = join(tmp, "cfg");
  const stacks: Stack[] = [];
  try {
    const stack = await startStack(data, "sim", 0, cfg, ["--store", "etcd"]);
    stacks.push(stack);
    const etcdPid = stack.started.etcd as number;
    assert.match(String(stack.started.store), /^etcd:\/\/127\.0\.0\.1:\d+$/, stack.out());
    assert.ok(alive(etcdPid), "etcd runs");
    const cmdline = readFileSync(`/proc/${etcdPid}/cmdline`, "utf8").split("\0");
    assert.ok(cmdline.includes(`--data-dir=${join(data, "etcd", "data")}`), `etcd's data is start's: ${cmdline}`);
    assert.ok(
      cmdline.filter((a) => /^--(listen|advertise)-/.test(a)).every((a) => a.includes("http://127.0.0.1:")),
      `loopback only: ${cmdline}`,
    );
    const facilityArgs = readFileSync(`/proc/${stack.facility}/cmdline`, "utf8").split("\0");
    assert.ok(facilityArgs.includes(String(stack.started.store)), "the facility's store is the etcd");

    // The facility's metrics listener (loopback, plain HTTP).
    const metricsUrl = stack.started.facilityMetrics as string;
    assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const mrg = cli("mrg", stack.url, cfg, tmp);
    const cog = cli("cog", stack.url, cfg, tmp);
    const ok = async (run: typeof mrg, args: string[]) => {
      const r = await run(args);
      assert.equal(r.code, 0, `${args.join(" ")}:\n${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    await ok(mrg, ["login", "admin", "--password", stack.password as string]);
    await ok(mrg, ["new", "experiment", "demo.admin"]);
    await ok(mrg, ["push", join(root, "examples/demo.ts"), "demo.admin"]);
    await ok(mrg, ["realize", "r1.demo.admin", "--accept"]);
    assert.match(await ok(mrg, ["materialize", "r1.demo.admin", "--timeout", "120"]), /is active: 4 nodes/);
    // cog, without --store, finds the facility's state in the etcd.
    const mzs = JSON.parse(await ok(cog, ["list", "mz", "--json"])) as { mzid: string }[];
    assert.ok(
      mzs.some((m) => m.mzid === "r1.demo.admin"),
      `cog list mz: ${JSON.stringify(mzs)}`,
    );
    const scraped = await (await fetch(metricsUrl)).text();
    assert.match(scraped, /^merge_rex_actions_total\{[^}]*outcome="complete"[^}]*\} [1-9]/m);
    assert.match(scraped, /^merge_commander_requests_total\{/m);

    // Stopped (Ctrl-C): etcd stops with it; its data stays for the next start.
    assert.equal(await stopStack(stack), 0, stack.out());
    assert.ok(await gone(etcdPid), "etcd stopped with start");
    assert.ok(existsSync(join(data, "etcd", "data")), "etcd's data is kept");

    // A second start on the same data: the same etcd data (the realization is there), then SIGKILL.
    const again = await startStack(data, "sim", 0, cfg, ["--store", "etcd"]);
    stacks.push(again);
    const mrg2 = cli("mrg", again.url, cfg, tmp);
    await ok(mrg2, ["login", "admin", "--password", stack.password as string]);
    const shown = JSON.parse(await ok(mrg2, ["show", "materialization", "r1.demo.admin", "--json"])) as {
      status: string;
    };
    assert.equal(shown.status, "active");
    await ok(mrg2, ["dematerialize", "r1.demo.admin", "--timeout", "120"]);
    const etcd2 = again.started.etcd as number;
    again.child.kill("SIGKILL");
    assert.ok(await gone(etcd2), "a SIGKILLed start takes its etcd with it");
    assert.ok(await gone(again.facility), "and its facility");
  } finally {
    for (const s of stacks) {
      if (s.child.exitCode === null && s.child.signalCode === null) await stopStack(s);
      for (const pid of [s.facility, s.started.etcd as number | undefined])
        if (pid && alive(pid)) process.kill(pid, "SIGKILL");
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});
