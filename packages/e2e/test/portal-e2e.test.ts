// End to end through the real portal: push → realize → `mrg materialize` (portal
// materializations plugin) → startFacility: commander (mTLS) → driver → rex → sim, then
// `mrg show materialization` and `mrg dematerialize`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { linkOf } from "@merge/xir";
import { simSuite } from "./portal-stack.ts";

const sim = simSuite("mrg-pe2e-");
const { backend, mrg } = sim;

test("mrg materialize → active; show materialization; mrg dematerialize → gone", async () => {
  const n = 4;
  const xir = JSON.stringify({
    xir: "1.0",
    name: "chain",
    parameters: {},
    nodes: Array.from({ length: n }, (_, i) => ({
      name: `n${i}`,
      constraints: [],
      sockets: [0, 1].map((index) => ({ index, addrs: [], constraints: [] })),
      properties: {},
    })),
    links: Array.from({ length: n - 1 }, (_, i) =>
      linkOf(`l${i}`, [
        [`n${i}`, 1],
        [`n${i + 1}`, 0],
      ]),
    ),
  });
  await sim.stack.accepted("p1", "e1", xir, "xir");

  const up = await mrg(["materialize", "r1.e1.p1", "--timeout", "60"]);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /r1\.e1\.p1 is active: 4 nodes, 3 links/);
  assert.equal([...backend.nodes.values()].filter((x) => x.state === "ready").length, 4);

  const again = await mrg(["materialize", "r1.e1.p1", "--no-wait"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /at most one materialization per realization/);

  const shown = await mrg(["show", "materialization", "r1.e1.p1", "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  const st = JSON.parse(shown.stdout) as { status: string; nodes: { current: string }[]; links: unknown[] };
  assert.equal(st.status, "active");
  assert.equal(st.nodes.length, 4);
  assert.ok(st.nodes.every((x) => x.current === "ready"));
  assert.equal(st.links.length, 3);

  const down = await mrg(["dematerialize", "r1.e1.p1", "--timeout", "60"]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /is dematerialized/);
  assert.ok([...backend.nodes.values()].every((x) => x.state === "clean"));
  assert.equal(backend.infrapods.size, 0);
  const gone = await mrg(["show", "materialization", "r1.e1.p1"]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /not materialized/);
});
