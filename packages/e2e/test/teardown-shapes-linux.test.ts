// Materialize and dematerialize the shapes users make, for real, through the
// whole stack (portal + commander + driver + rex + LinuxBackend, driven by
// `mrg`): plain P2P, plain LAN, mixed emulated/plain, emulated LAN, a node with
// several links, a routed line, two materializations of one experiment at once,
// dematerialize while materializing, and dematerialize twice. Each must ping
// across every link, then be gone within a bound with nothing left on the host.
// Needs root and network namespaces; skipped with the reason otherwise.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Driver } from "@merge/facility";
import { isClean, leftovers, prefixOf, sweep } from "@merge/facility/linux";
import {
  alive,
  check,
  line3,
  localPlan,
  namesOf,
  nodePid,
  nodeStop,
  processesIn,
  skip,
} from "@merge/facility/testing/linux";
import type { PortalClient } from "@merge/portal/client";
import type { Experiment } from "@merge/xir";
import { type LinuxPortalStack, startLinuxPortalStack } from "./portal-stack.ts";

const HEAD = `import { latency, ms, Network, addressing, routing, image } from "@merge/model";`;
const model = (name: string, body: string, opts = "addressing.ipv4, routing.static") =>
  `${HEAD}\nconst net = new Network("${name}", ${opts});\n${body}\nexport default net;\n`;
const nodes = (...names: string[]) => names.map((n) => `const ${n} = net.node("${n}", image("busybox"));`).join("\n");

const MODELS: Record<string, string> = {
  p2p: model("p2p", `${nodes("a", "b")}\nnet.connect([a, b]).named("ab");`),
  lan: model("lan", `${nodes("a", "b", "c")}\nnet.lan([a, b, c]).named("abc");`),
  // An emulated P2P, a plain LAN and plain P2Ps; b has three links, d two.
  mixed: model(
    "mixed",
    `${nodes("a", "b", "c", "d", "e", "f")}
net.connect([a, b], latency.eq(ms(2))).named("ab");
net.lan([b, c, d]).named("bcd");
net.connect([d, e]).named("de");
net.connect([b, f]).named("bf");`,
  ),
  emulan: model("emulan", `${nodes("a", "b", "c")}\nnet.lan([a, b, c], latency.eq(ms(2))).named("abc");`),
  // A node with no links at all (a model may not leave one node of several unlinked: islands do not compile).
  lonely: model("lonely", nodes("a"), "addressing.ipv4"),
  // routing == static across a router: a reaches b only through r.
  routed: model(
    "routed",
    `${nodes("a", "r", "b")}\nnet.connect([a, r]).named("ar");\nnet.connect([r, b]).named("rb");`,
  ),
};

/**
 * What must answer, by sending node: across each link, its first endpoint
 * reaches the others; with static routing, the first node reaches every
 * address of every node (routed paths end to end).
 */
function targets(xp: Experiment): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (from: string, addr: string | undefined) => {
    assert.ok(addr, `an address to reach from ${from}`);
    out.set(from, (out.get(from) ?? new Set()).add(addr.split("/")[0]!));
  };
  const addrs = (node: string, socket?: number) =>
    (xp.nodes.find((n) => n.name === node)?.sockets ?? []).filter((s) => socket === undefined || s.index === socket);
  for (const l of xp.links) {
    const [first, ...rest] = l.endpoints;
    for (const e of rest) add(first!.node, addrs(e.node, e.socket)[0]?.addrs[0]);
  }
  const from = xp.nodes[0]!.name;
  if (xp.parameters.routing === "static")
    for (const n of xp.nodes.slice(1)) for (const s of addrs(n.name)) for (const a of s.addrs) add(from, a);
  return out;
}

describe("teardown of varied topologies on the linux backend, through portal and commander", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-shapes-linux-"));
  const proj = `p${randomBytes(4).toString("hex")}`;
  const dataDir = join(tmp, "linux");
  let stack: LinuxPortalStack | undefined;
  let admin: PortalClient;
  const mzids: string[] = [];

  const mrg = (args: string[], input?: string) => (stack as LinuxPortalStack).mrg(args, input);

  /** Push a model as experiment `exp` and accept realizations `rlzs` of it; returns the compiled XIR. */
  async function prepare(exp: string, source: string, rlzs: string[]): Promise<Experiment> {
    await admin.createExperiment(proj, { name: exp });
    const rev = await admin.push(proj, exp, source, "ts");
    assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
    for (const name of rlzs) {
      const r = await admin.realize(proj, exp, { name, accept: true });
      assert.equal(r.state, "accepted", `realization failed: ${JSON.stringify(r)}`);
      mzids.push(`${name}.${exp}.${proj}`);
    }
    return (await admin.revision(proj, exp, rev.number)).xir as Experiment;
  }

  /** Ping what must answer (see `targets`): one `mrg exec` per sending node, naming every address that did not answer. */
  async function pingAll(mz: string, xp: Experiment): Promise<void> {
    for (const [from, addrs] of targets(xp)) {
      const script = `for a in ${[...addrs].join(" ")}; do busybox ping -c 1 -W 3 $a >/dev/null || echo silent $a; done`;
      const r = await mrg(["exec", from, mz, "--", "busybox", "sh", "-c", script]);
      assert.equal(r.code, 0, `${mz}: ${from}: ${r.stderr}`);
      assert.equal(r.stdout, "", `${mz}: from ${from} (to ${[...addrs].join(", ")}): ${r.stdout}`);
    }
    // A node without links answers to exec at least.
    for (const n of xp.nodes.filter((n) => !xp.links.some((l) => l.endpoints.some((e) => e.node === n.name)))) {
      const r = await mrg(["exec", n.name, mz, "--", "busybox", "hostname"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), n.name);
    }
  }

  /** Dematerialize through mrg within `seconds`, then nothing of it is left on the host. */
  async function down(mz: string, seconds = 30): Promise<void> {
    const t0 = Date.now();
    const r = await mrg(["dematerialize", mz, "--timeout", String(seconds)]);
    if (r.code !== 0) process.stderr.write(`# ${(await mrg(["show", "materialization", mz, "--json"])).stdout}\n`);
    assert.equal(r.code, 0, `${mz}: dematerialize: ${r.stderr}${r.stdout}`);
    await clean(mz);
    process.stderr.write(`# ${mz}: down in ${Date.now() - t0} ms\n`);
  }

  async function clean(mz: string): Promise<void> {
    const left = await leftovers(prefixOf(mz), dataDir);
    assert.ok(isClean(left), `${mz} left behind: ${JSON.stringify(left)}`);
  }

  /** The portal's materialization resource (the REST call under `mrg (de)materialize`). */
  function rest(mz: string, method: "GET" | "DELETE"): Promise<Response> {
    const [r, e, p] = mz.split(".") as [string, string, string];
    return fetch(`${stack!.portal.url}/projects/${p}/experiments/${e}/realizations/${r}/materialization`, {
      method,
      headers: { authorization: `Bearer ${admin.token}` },
    });
  }

  /** Give a realization's resources back (the demo facility is small). */
  async function release(mz: string): Promise<void> {
    const [r, e] = mz.split(".") as [string, string];
    await admin.relinquish(proj, e, r);
  }

  before(async () => {
    stack = await startLinuxPortalStack(tmp, mzids);
    ({ admin } = stack);
    await admin.createProject({ name: proj });
  });

  after(() => stack?.close());

  /** Materialize through mrg (waiting until active) and ping across every link. */
  async function up(mz: string, xp: Experiment): Promise<void> {
    const t0 = Date.now();
    const r = await mrg(["materialize", mz, "--timeout", "60"]);
    if (r.code !== 0) process.stderr.write(`# ${(await mrg(["show", "materialization", mz, "--json"])).stdout}\n`);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    process.stderr.write(`# ${mz}: up in ${Date.now() - t0} ms\n`);
    await pingAll(mz, xp);
  }

  // The reported stall: a node's recycle killed every process in its namespace, including the
  // `ip -n <node>` batch of the link teardown running in parallel; that action failed, and a failed
  // teardown action holds the dematerialize until an operator acts.
  test("recycling a node spares our own iproute2 batch working in its namespace and stops the rest", async () => {
    const mz = `race.ns.${proj}`;
    mzids.push(mz);
    const prefix = prefixOf(mz);
    const ns = namesOf(prefix).node("a");
    await check("ip", ["netns", "add", ns]);
    const tool = spawn("ip", ["-n", ns, "monitor"], { stdio: "ignore" }); // as an IprouteBatch runs one
    const stray = spawn("ip", ["netns", "exec", ns, "sleep", "60"], { stdio: "ignore" }); // the node's own
    try {
      const end = Date.now() + 5000;
      // Until `ip netns exec` has exec'd sleep, the stray still looks like one of our iproute2 batches.
      const strayIsSleep = () => {
        try {
          return readFileSync(`/proc/${stray.pid}/comm`, "utf8").trim() === "sleep";
        } catch {
          return false;
        }
      };
      while (processesIn([ns]).length < 2 || !strayIsSleep()) {
        assert.ok(Date.now() < end, "both processes entered the namespace");
        await new Promise((r) => setTimeout(r, 10));
      }
      await nodeStop(stack!.backend.dataPlane.env, prefix, "a", 0, { downInterfaces: false });
      assert.ok(alive(tool.pid!), "our iproute2 batch still runs");
      // The stray is our child: it is gone once reaped (until then a zombie still answers kill 0).
      const stopped = await Promise.race([
        new Promise<boolean>((res) =>
          stray.exitCode !== null || stray.signalCode !== null ? res(true) : stray.once("exit", () => res(true)),
        ),
        new Promise<boolean>((res) => setTimeout(() => res(false), 5000)),
      ]);
      assert.ok(stopped, "what runs in the node is stopped");
      assert.deepEqual(
        processesIn([ns]).map((p) => p.pid),
        [tool.pid],
      );
    } finally {
      tool.kill("SIGKILL");
      stray.kill("SIGKILL");
    }
    assert.ok(isClean(await sweep(prefix, dataDir)));
  });

  // A container whose network namespace lost its name (deleted while it ran: a node started in a
  // race with its recycle) cannot be found by namespace name; leftovers and sweep find it by its root.
  test("leftovers and sweep find a container whose network namespace lost its name", async () => {
    const mz = `orphan.ns.${proj}`;
    mzids.push(mz);
    const prefix = prefixOf(mz);
    await stack!.backend.dataPlane.materialize(localPlan(line3(), mz));
    const pid = nodePid(stack!.backend.dataPlane.env, prefix, "a");
    assert.ok(pid, "node a runs");
    await check("ip", ["netns", "del", namesOf(prefix).node("a")]);
    const left = await leftovers(prefix, dataDir);
    assert.ok(
      left.processes.some((p) => p.pid === pid),
      `a's init ${pid} is listed: ${JSON.stringify(left.processes)}`,
    );
    assert.ok(isClean(await sweep(prefix, dataDir)));
    assert.ok(!alive(pid), "and swept");
  });

  for (const [name, source] of Object.entries(MODELS)) {
    test(`${name}: materialize, ping across every link, dematerialize, nothing left`, {
      timeout: 120_000,
    }, async () => {
      const xp = await prepare(name, source, ["r"]);
      const mz = `r.${name}.${proj}`;
      await up(mz, xp);
      if (name === "p2p") {
        // Dematerialize twice at once: both accepted, one teardown; gone within the bound.
        const both = await Promise.all([rest(mz, "DELETE"), rest(mz, "DELETE")]);
        assert.deepEqual(
          both.map((r) => r.status),
          [202, 202],
          "both accepted",
        );
        const end = Date.now() + 30_000;
        while ((await rest(mz, "GET")).status !== 404) {
          assert.ok(Date.now() < end, `${mz} still there 30 s after dematerialize`);
          await new Promise((r) => setTimeout(r, 200));
        }
        await clean(mz);
        // Once it is gone, once more is a clear error.
        const gone = await mrg(["dematerialize", mz]);
        assert.notEqual(gone.code, 0);
        assert.match(gone.stderr, /is not materialized/);
      } else await down(mz);
      await release(mz);
    });
  }

  test("two materializations of one experiment at once: both work, both go, nothing left", {
    timeout: 120_000,
  }, async () => {
    const xp = await prepare("twin", MODELS.mixed!, ["r1", "r2"]);
    const [m1, m2] = [`r1.twin.${proj}`, `r2.twin.${proj}`];
    await Promise.all([up(m1, xp), up(m2, xp)]);
    await Promise.all([down(m1), down(m2)]);
    await Promise.all([release(m1), release(m2)]);
  });

  test("dematerialize while node setup is in flight: gone in time, nothing left, nothing comes back", {
    timeout: 120_000,
  }, async () => {
    await prepare("early", MODELS.mixed!, ["r"]);
    const mz = `r.early.${proj}`;
    const go = await mrg(["materialize", mz, "--no-wait"]);
    assert.equal(go.code, 0, go.stderr);
    const driver = new Driver(stack!.store);
    const end = Date.now() + 30_000;
    for (;;) {
      const s = await driver.status(mz);
      if (s.actions.some((a) => a.spec.kind === "node.setup" && a.attempts > 0 && a.state === "pending")) break;
      assert.ok(Date.now() < end, `node setup never started: ${JSON.stringify(s.summary)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await down(mz);
    // Setup actions cut short must not bring anything back afterwards.
    await new Promise((r) => setTimeout(r, 3000));
    const later = await leftovers(prefixOf(mz), dataDir);
    assert.ok(isClean(later), `${mz}: after teardown, came back: ${JSON.stringify(later)}`);
    await release(mz);
  });
});
