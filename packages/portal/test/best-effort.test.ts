/**
 * The API's bestEffort: a realization that cannot be made answers with the
 * closest mapping and every unmet constraint, and reserves nothing.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { linkOf } from "@merge/xir";
import { apiError, type Harness, startHarness } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

test("bestEffort: a failed realization carries the closest mapping; nothing is held and it cannot be accepted", async () => {
  const u = await h.user("bea");
  await u.createExperiment("bea", { name: "big" });
  const socket = (index: number) => ({ index, addrs: [], constraints: [] });
  const xir = {
    xir: "1.0",
    name: "big",
    parameters: {},
    nodes: [
      { name: "a", constraints: [], sockets: [socket(0)], properties: {} },
      { name: "b", constraints: [], sockets: [socket(0), socket(1)], properties: {} },
      {
        name: "huge",
        constraints: [{ prop: "memory.capacity", op: ">=", value: 2 ** 50 }],
        sockets: [socket(0)],
        properties: {},
      },
    ],
    links: [
      linkOf("ab", [
        ["a", 0],
        ["b", 0],
      ]),
      linkOf("bh", [
        ["b", 1],
        ["huge", 0],
      ]),
    ],
  };
  await u.push("bea", "big", JSON.stringify(xir), "xir");
  const plain = await u.realize("bea", "big", { name: "plain" });
  assert.equal(plain.state, "failed");
  assert.equal(plain.closest, undefined);
  const best = await u.realize("bea", "big", { name: "best", bestEffort: true });
  assert.equal(best.state, "failed");
  assert.match(best.diagnostics[0]!, /^node huge: memory\.capacity >= 1 PiB/);
  assert.ok(
    best.diagnostics.includes("link bh: not realized: its endpoint huge has no resource"),
    best.diagnostics.join("\n"),
  );
  const closest = best.closest as { nodes: { node: string }[]; links: { link: string }[] };
  assert.deepEqual(
    closest.nodes.map((n) => n.node),
    ["a", "b"],
  );
  assert.deepEqual(
    closest.links.map((l) => l.link),
    ["ab"],
  );
  assert.equal(best.resources.length, 0);
  const holders = (await h.admin.resources({ allocated: true })).flatMap((r) => r.holders.map((x) => x.realization));
  assert.ok(!holders.includes("best.big.bea"));
  assert.equal((await apiError(u.accept("bea", "big", "best"))).status, 409);
  // Stored as a failed realization with its diagnosis; the closest mapping is not kept.
  const stored = await u.realization("bea", "big", "best");
  assert.equal(stored.state, "failed");
  assert.equal(stored.closest, undefined);
});
