// `npm start` and the README's quick start, as a user runs them: start the whole stack
// (portal in-process, facility as a child over mutual TLS), then drive it with `mrg`
// subprocesses: login, new experiment, push examples/demo.ts, realize, materialize,
// show, (linux: exec ping across the routed, emulated path), dematerialize, relinquish;
// and as the operator, `cog harbor`: all of phobos's testbed nodes wait in the harbor,
// the ones the demo takes leave it and come back. Stops the stack with SIGINT and checks
// that its processes are gone; on linux, `cog host sweep --all` then leaves nothing.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { alive, cliIn, cliOk, type Stack, startStack, stopStack } from "./fixtures/start-stack.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const isRoot = process.getuid?.() === 0;

async function quickStart(backend: "sim" | "auto", expectBackend: string): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-start-"));
  let stack: Stack | undefined;
  try {
    stack = await startStack(join(tmp, "data"), backend, 0, join(tmp, "cfg"));
    assert.ok(stack.password, `the first start prints the administrator's password:\n${stack.out()}`);
    assert.equal(stack.backend, expectBackend);
    assert.ok(alive(stack.facility), "the facility runs as a child process");
    const health = await fetch(`${stack.url}/health`);
    assert.equal(health.status, 200);

    const ok = cliOk(stack.url, join(tmp, "cfg"), "mrg", tmp);
    // No --store: cog finds npm start's store from the record start left in the config directory.
    const cog = cliIn(stack.url, join(tmp, "cfg"), "cog", tmp);
    const harbor = async () => {
      const r = await cog(["harbor", "--json"]);
      assert.equal(r.code, 0, `cog harbor:\n${r.stderr}${r.stdout}`);
      const h = JSON.parse(r.stdout) as {
        name: string;
        nodes: { resource: string; state: string; carrying: { node?: string }[] }[];
      };
      assert.equal(h.name, "main.harbor.phobos");
      return h.nodes.map(
        (n) => `${n.resource}:${n.state === "standby" ? "standby" : n.carrying.map((c) => c.node).join("+")}`,
      );
    };
    assert.deepEqual(await harbor(), ["n0:standby", "n1:standby", "n2:standby", "n3:standby"]);
    await ok(["login", "admin", "--password", stack.password as string]);
    await ok(["new", "experiment", "demo.admin"]);
    await ok(["push", join(root, "examples/demo.ts"), "demo.admin"]);
    const facilities = JSON.parse(await ok(["list", "facilities", "--json"])) as { name: string; endpoint: string }[];
    assert.equal(facilities[0]?.endpoint, `https://127.0.0.1:${/"facilityPort":(\d+)/.exec(stack.out())?.[1]}`);
    await ok(["realize", "r1.demo.admin", "--accept"]);
    const up = await ok(["materialize", "r1.demo.admin", "--timeout", "120"]);
    assert.match(up, /r1\.demo\.admin is active: 4 nodes, 2 links/);
    const shown = JSON.parse(await ok(["show", "materialization", "r1.demo.admin", "--json"])) as {
      status: string;
      nodes: { current: string }[];
    };
    assert.equal(shown.status, "active");
    assert.equal(shown.nodes.length, 4);
    // The demo's four nodes leave the harbor: as VMs (MergeTB's default when a model does not ask for metal).
    const during = await harbor();
    assert.deepEqual(
      during
        .flatMap((p) => p.split(":")[1]?.split("+") ?? [])
        .filter((n) => n !== "standby")
        .sort(),
      ["c0", "c1", "router", "server"],
      `the demo's nodes took the harbor's: ${during}`,
    );
    if (expectBackend === "linux") {
      const ping = await ok(["exec", "c0", "r1.demo.admin", "--", "ping", "-c", "3", "server"]);
      // Debian's ping (the default image) or busybox's, where the Debian image is not built.
      assert.match(ping, /3 packets transmitted, 3 (packets )?received/);
      // 10 ms each way on the wan link: about 20 ms round trip.
      const avg = Number(/min\/avg\/max(?:\/mdev)? = [\d.]+\/([\d.]+)\//.exec(ping)?.[1]);
      assert.ok(avg >= 17 && avg < 60, `round trip ${avg} ms across the emulated link`);
      // The operator's sweep refuses while the facility runs on its data directory, and names it.
      const backendDir = join(tmp, "data", "facility", "backend");
      const refused = await cog(["host", "sweep", "--all", "--data-dir", backendDir]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`is in use by pid ${stack.facility} .*--force`));
      assert.match(await ok(["exec", "c0", "r1.demo.admin", "--", "true"]), /^$/);
    }
    await ok(["dematerialize", "r1.demo.admin", "--timeout", "120"]);
    assert.deepEqual(
      await harbor(),
      ["n0:standby", "n1:standby", "n2:standby", "n3:standby"],
      "all back in the harbor",
    );
    await ok(["relinquish", "r1.demo.admin"]);

    const code = await stopStack(stack);
    assert.equal(code, 0, stack.out());
    assert.equal(alive(stack.facility), false, "stopping the stack stops the facility");
    if (expectBackend === "linux") {
      // The harbor outlives the stack (the next start takes it back) until swept.
      const held = JSON.parse((await cog(["host", "list", "--json"])).stdout) as {
        mzid?: string;
        harbor: boolean;
        left: { netns: string[] };
      }[];
      assert.deepEqual(
        held.map((h) => h.harbor),
        [true],
        `only the harbor is left: ${JSON.stringify(held)}`,
      );
      assert.equal(held[0]?.left.netns.length, 5, "the harbor's infrapod and phobos's four nodes in standby");
    }
  } finally {
    if (stack && stack.child.exitCode === null) await stopStack(stack);
    if (stack && alive(stack.facility)) process.kill(stack.facility, "SIGKILL");
    if (expectBackend === "linux") {
      const r = await cliIn(
        "",
        join(tmp, "cfg"),
        "cog",
        tmp,
      )(["host", "sweep", "--all", "--data-dir", join(tmp, "data", "facility", "backend")]);
      assert.equal(r.code, 0, r.stderr);
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

describe("npm start and the README quick start", { concurrency: 1 }, () => {
  test("on the sim backend", { timeout: 300_000 }, () => quickStart("sim", "sim"));
  test(
    "on the linux backend (root): ping across the demo's routed, emulated path",
    { timeout: 300_000, skip: isRoot ? false : "needs root for the linux backend" },
    () => quickStart("auto", "linux"),
  );
});
