// The experimenter's mistakes, as a user makes them: the real `mrg` binary
// (bin/mrg, a subprocess) against a real portal and facility (sim backend).
// Each mistake must say what was wrong and what would be valid, with exit
// status 1 for failures and 2 for usage errors; lists must be JSON with --json.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type PortalStack, startPortalStack } from "@merge/e2e/portal-stack";
import { freePort, SimBackend } from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";
import { keys } from "@merge/portal";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = join(root, "packages/cli/bin/mrg");
const tmp = mkdtempSync(join(tmpdir(), "mrg-usage-"));
let stack: PortalStack;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs bin/mrg. By default signed in as the administrator through a saved
 * session in its own config directory; `env` overrides (undefined removes).
 */
function mrg(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const e: Record<string, string | undefined> = {
    ...process.env,
    MERGE_PORTAL: stack.portal.url,
    MERGE_TOKEN: stack.admin.token,
    MERGE_CONFIG_DIR: join(tmp, "cfg-admin"),
    MERGE_PASSWORD: undefined,
    ...env,
  };
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: root, env: e as NodeJS.ProcessEnv }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

before(async () => {
  stack = await startPortalStack(tmp, new SimBackend({ durations: { imaging: 5, power: 2, network: 1, infrapod: 2 } }));
  await stack.admin.createExperiment("admin", { name: "demo" });
});

after(() => closeThenRemove(tmp, stack));

describe("mrg, the experimenter's workflow and its mistakes", () => {
  test("push, realize, materialize and tear down, with --json where scripts read it", async () => {
    const push = await mrg(["push", "examples/demo.ts", "demo.admin", "--json"]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal((JSON.parse(push.stdout) as { status: string }).status, "compiled");

    const rz = await mrg(["realize", "r1.demo.admin", "--accept", "--json"]);
    assert.equal(rz.code, 0, rz.stderr);
    assert.equal((JSON.parse(rz.stdout) as { state: string }).state, "accepted");

    const [experiments, realizations] = await Promise.all([
      mrg(["list", "experiments", "--json"]),
      mrg(["list", "realizations", "demo.admin", "--json"]),
    ]);
    for (const r of [experiments, realizations]) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(experiments.stdout) as { name: string; project: string }[]).map((x) => `${x.name}.${x.project}`),
      ["demo.admin"],
    );
    assert.deepEqual(
      (JSON.parse(realizations.stdout) as { id: string; state: string }[]).map((x) => [x.id, x.state]),
      [["r1.demo.admin", "accepted"]],
    );

    const up = await mrg(["materialize", "r1.demo.admin", "--timeout", "60"]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /r1\.demo\.admin is active: 4 nodes, 2 links/);
    // No terminal: progress comes as lines, not a bar.
    assert.match(up.stderr, /materializing r1\.demo\.admin: \d+\/\d+ actions/);

    const shown = await mrg(["show", "materialization", "r1.demo.admin", "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    const mz = JSON.parse(shown.stdout) as {
      status: string;
      nodes: { node: string; addresses: string[]; infranet: string; image?: string }[];
    };
    assert.equal(mz.status, "active");
    assert.deepEqual(mz.nodes.map((n) => n.node).sort(), ["c0", "c1", "router", "server"]);
    // Each node's experiment addresses are its XIR sockets' (in socket order), with its infranet address and image.
    const compiled = await mrg(["compile", "examples/demo.ts"]);
    assert.equal(compiled.code, 0, compiled.stderr);
    const xir = JSON.parse(compiled.stdout) as {
      nodes: { name: string; sockets: { index: number; addrs: string[] }[] }[];
    };
    const infranets = new Set<string>();
    for (const n of mz.nodes) {
      const want = xir.nodes.find((x) => x.name === n.node)!.sockets.sort((a, b) => a.index - b.index);
      assert.deepEqual(
        n.addresses,
        want.flatMap((x) => x.addrs),
        n.node,
      );
      assert.ok(n.addresses.length >= 1 && n.addresses.every((a) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(a)), n.node);
      assert.match(n.infranet, /^\d+\.\d+\.\d+\.\d+$/, n.node);
      infranets.add(n.infranet);
      assert.equal(n.image, "busybox", n.node);
    }
    assert.equal(mz.nodes.find((n) => n.node === "router")!.addresses.length, 2, "the router is on both links");
    assert.equal(infranets.size, 4, "one infranet address per node");
    const table = await mrg(["show", "materialization", "r1.demo.admin"]);
    assert.equal(table.code, 0, table.stderr);
    const router = mz.nodes.find((n) => n.node === "router")!;
    const row = table.stdout.split("\n").find((l) => l.includes(router.infranet));
    assert.ok(row, table.stdout);
    for (const a of router.addresses) assert.ok(row.includes(a), `${a} in ${row}`);
    assert.match(row, /busybox/);

    // Mistakes on a materialization: a node or link that is not there names the ones that are.
    const [exec, emu] = await Promise.all([
      mrg(["exec", "c9", "r1.demo.admin", "--", "true"]),
      mrg(["emu", "set", "wna", "r1.demo.admin", "--latency", "30ms"]),
    ]);
    assert.equal(exec.code, 1);
    assert.match(exec.stderr, /has no node 'c9' \(nodes: c0, c1, router, server\)/);
    assert.equal(emu.code, 1);
    assert.match(emu.stderr, /has no link 'wna' \(links: clients, wan\)/);

    const down = await mrg(["dematerialize", "r1.demo.admin", "--json", "--timeout", "60"]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(JSON.parse(down.stdout), { id: "r1.demo.admin", status: "dematerialized" });
    const gone = await mrg(["relinquish", "r1.demo.admin", "--json"]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.deepEqual(JSON.parse(gone.stdout), { id: "r1.demo.admin", state: "relinquished" });
    const [none, idle] = await Promise.all([
      mrg(["list", "realizations", "demo.admin", "--json"]),
      mrg(["emu", "show", "r1.demo.admin"]),
    ]);
    assert.deepEqual(JSON.parse(none.stdout), []);
    assert.equal(idle.code, 1);
    assert.match(
      idle.stderr,
      /r1\.demo\.admin is not materialized\n {2}materialize it first: mrg materialize r1\.demo\.admin/,
    );
  });

  test("a Python model pushes as it is; one with a syntax error names file, line and column", async () => {
    await stack.admin.createExperiment("admin", { name: "py" });
    const ok = await mrg(["push", "examples/python/hello-world.py", "py.admin"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /compiled/);

    const bad = join(tmp, "bad.ts");
    writeFileSync(bad, 'import { Network } from "@merge/model";\nconst net = new Network("bad"\nnet.node("a");\n');
    const r = await mrg(["push", bad, "py.admin"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${bad.replace(/[.]/g, "\\.")}:3:\\d+: error: `));
    assert.match(r.stderr, /revision 2 of py\.admin did not compile; fix the model and push again/);
    // The numbering rule, shown where it bites: the failed push took number 2, revision 1 is what realizes.
    assert.match(
      r.stderr,
      /a failed push keeps its number too, with its errors; the latest compiled revision is 1: mrg realize rN\.py\.admin 1/,
    );
  });

  test("usage errors exit 2: typos get the nearest command, malformed names the expected form", async () => {
    const [typo, sub, short, upper, noDash, timeout, bare, missing] = await Promise.all([
      mrg(["realiz", "r1.demo.admin"]),
      mrg(["show", "realisation", "r1.demo.admin"]),
      mrg(["show", "realization", "r1.demo"]),
      mrg(["accept", "R1.demo.admin"]),
      mrg(["exec", "c0", "r1.demo.admin", "ping", "-c", "1", "server"]),
      mrg(["materialize", "r1.demo.admin", "--timeout", "soon"]),
      mrg([]),
      mrg(["push", "examples/demo.ts"]),
    ]);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown command 'realiz'\n\(Did you mean realize\?\)/);
    assert.equal(sub.code, 2);
    assert.match(sub.stderr, /Did you mean realization\?/);
    assert.match(sub.stderr, /see 'mrg show --help'/);
    assert.equal(short.code, 2);
    assert.match(
      short.stderr,
      /'r1\.demo' is not a realization name: expected realization\.experiment\.project \(3 parts\)/,
    );
    assert.equal(upper.code, 2);
    assert.match(upper.stderr, /the realization part 'R1' must be lower-case letters and digits/);
    assert.equal(noDash.code, 2);
    assert.match(noDash.stderr, /unknown option '-c'/);
    assert.match(noDash.stderr, /put the node's command after --/);
    assert.equal(timeout.code, 2);
    assert.match(timeout.stderr, /--timeout 'soon': expected seconds > 0/);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /mrg login admin --password/, "the help shows the workflow");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'exp\.proj'/);
  });

  test("emu set: every value needs its unit; a bare number or a wrong unit is a usage error listing the units", async () => {
    const [capacity, latency, loss, bytes] = await Promise.all([
      mrg(["emu", "set", "wan", "r1.demo.admin", "--capacity", "50"]),
      mrg(["emu", "set", "wan", "r1.demo.admin", "--latency", "30"]),
      mrg(["emu", "set", "wan", "r1.demo.admin", "--loss", "0.01"]),
      mrg(["emu", "set", "wan", "r1.demo.admin", "--capacity", "50MB"]),
    ]);
    assert.equal(capacity.code, 2, capacity.stderr);
    assert.match(
      capacity.stderr,
      /--capacity '50': a number needs a unit, one of bps, bit\/s, bit, kbps, .*mbit.* \(e\.g\. 50Mbit\)/,
    );
    assert.equal(latency.code, 2, latency.stderr);
    assert.match(latency.stderr, /--latency '30': a number needs a unit, one of ns, us, µs, ms, s \(e\.g\. 30ms\)/);
    assert.equal(loss.code, 2, loss.stderr);
    assert.match(loss.stderr, /--loss '0\.01': a number needs a unit, one of % \(e\.g\. 1%\)/);
    assert.equal(bytes.code, 2, bytes.stderr);
    assert.match(bytes.stderr, /--capacity '50MB': expected a bit rate, one of bps/);
  });

  test("mrg cp: one side must be node:PATH; a missing local file is named before anything is sent", async () => {
    const [local, remote, absent] = await Promise.all([
      mrg(["cp", "README.md", "./copy:of", "r1.demo.admin"]),
      mrg(["cp", "c0:/etc/hosts", "c1:/tmp/hosts", "r1.demo.admin"]),
      mrg(["cp", "no-such-file.bin", "c0:/tmp/", "r1.demo.admin"]),
    ]);
    for (const r of [local, remote]) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /exactly one side must be node:PATH \(e\.g\. mrg cp file c0:\/tmp\/ r1\.demo\.admin\)/);
    }
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /no-such-file\.bin: no such file/);
  });

  test("a name that does not exist lists the ones that do, nearest first", async () => {
    const [rlz, exp, proj] = await Promise.all([
      mrg(["show", "realization", "r7.demo.admin"]),
      mrg(["show", "realization", "r1.dmo.admin"]),
      mrg(["list", "realizations", "demo.admn"]),
    ]);
    assert.equal(rlz.code, 1);
    assert.match(rlz.stderr, /realization 'r7\.demo\.admin' does not exist/);
    assert.equal(exp.code, 1);
    assert.match(
      exp.stderr,
      /experiment 'dmo\.admin' does not exist\n {2}did you mean demo\.admin\?\n {2}experiments in project admin: .*demo\.admin/,
    );
    assert.equal(proj.code, 1);
    assert.match(proj.stderr, /project 'admn' does not exist\n {2}did you mean admin\?/);
  });

  test("materializing a realization that is not accepted says how to accept it", async () => {
    const rz = await mrg(["realize", "r2.demo.admin", "1"]);
    assert.equal(rz.code, 0, rz.stderr);
    assert.match(
      rz.stdout,
      /accept within \d+ s \(before \d\d:\d\d:\d\d UTC\) or it expires: mrg accept r2\.demo\.admin/,
    );
    const r = await mrg(["materialize", "r2.demo.admin"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /realization r2\.demo\.admin is pending; only an accepted realization can be materialized/);
    assert.match(r.stderr, /mrg accept r2\.demo\.admin/);
    const other = await mrg(["show", "realization", "r3.demo.admin"]);
    assert.match(other.stderr, /did you mean r2\.demo\.admin\?\n {2}realizations of demo\.admin: r2\.demo\.admin/);
    assert.equal((await mrg(["reject", "r2.demo.admin"])).code, 0);
  });

  test("signing in: missing, expired and wrong credentials say how to sign in", async () => {
    const cfg = join(tmp, "cfg-none");
    const none = await mrg(["list", "projects"], { MERGE_TOKEN: undefined, MERGE_CONFIG_DIR: cfg });
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      new RegExp(`not signed in; run 'mrg login' to sign in to ${stack.portal.url} \\(with a password: mrg login`),
    );

    // An API token past its expiry, as from an old session file.
    const issued = await stack.admin.createToken("admin", "old", 3600);
    const key = keys.token(issued.record.id);
    const kv = await stack.portal.store.get(key);
    assert.ok(kv, "the token record is in the portal store");
    await stack.portal.store.put(
      key,
      JSON.stringify({ ...JSON.parse(kv.value), expires: new Date(Date.now() - 1000).toISOString() }),
    );
    const expiredCfg = join(tmp, "cfg-expired");
    mkdirSync(expiredCfg, { recursive: true });
    writeFileSync(
      join(expiredCfg, "session.json"),
      JSON.stringify({ portal: stack.portal.url, token: issued.token, user: "admin", kind: "api" }),
    );
    const saved = await mrg(["list", "projects"], {
      MERGE_TOKEN: undefined,
      MERGE_PORTAL: undefined,
      MERGE_CONFIG_DIR: expiredCfg,
    });
    assert.equal(saved.code, 1);
    assert.match(
      saved.stderr,
      new RegExp(
        `the token has expired \\(portal ${stack.portal.url}, from the saved session\\); sign in again with: mrg login admin --password`,
      ),
    );
    const env = await mrg(["list", "projects"], { MERGE_TOKEN: issued.token });
    assert.equal(env.code, 1);
    assert.match(
      env.stderr,
      new RegExp(
        `the token has expired \\(portal ${stack.portal.url}, from \\$MERGE_PORTAL\\); the token comes from \\$MERGE_TOKEN`,
      ),
    );

    // A stale session: a login to another portal rewrote the session file; this portal does not know its token.
    const staleCfg = join(tmp, "cfg-stale");
    mkdirSync(staleCfg, { recursive: true });
    const elsewhere = `http://127.0.0.1:${await freePort()}`;
    writeFileSync(
      join(staleCfg, "session.json"),
      JSON.stringify({ portal: elsewhere, token: "mrg_0123456789abcdef", user: "alice", kind: "api" }),
    );
    const stale = await mrg(["list", "projects"], { MERGE_TOKEN: undefined, MERGE_CONFIG_DIR: staleCfg });
    assert.equal(stale.code, 1);
    assert.match(
      stale.stderr,
      new RegExp(
        `\\(portal ${stack.portal.url}, from \\$MERGE_PORTAL; the saved session \\(${join(staleCfg, "session.json")}\\) is signed in to ${elsewhere}, not this portal\\); sign in again with: mrg login alice`,
      ),
    );

    const wrong = await mrg(["login", "admin", "--password", "not-the-password"], {
      MERGE_TOKEN: undefined,
      MERGE_CONFIG_DIR: join(tmp, "cfg-wrong"),
    });
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      new RegExp(
        `wrong user name or password, or the account is not active \\(signing in to ${stack.portal.url} as admin\\)`,
      ),
    );
  });

  test("a portal that is not running: the URL tried, where it came from, how to start one", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const [flag, env] = await Promise.all([
      mrg(["list", "projects", "--portal", url]),
      mrg(["show", "materialization", "r1.demo.admin"], { MERGE_PORTAL: url }),
    ]);
    for (const [r, origin] of [
      [flag, "--portal"],
      [env, "\\$MERGE_PORTAL"],
    ] as const) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot reach the portal at ${url} \\(from ${origin}\\): connection refused`));
      assert.match(r.stderr, /start one with 'npm start'/);
    }
  });
});
