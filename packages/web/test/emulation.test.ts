/** The links table's rows per direction and the emulation form's checks and units (app/emulation.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  directionChoices,
  directionRows,
  emulationChange,
  emulationSummary,
  fromXirUnits,
  showCapacity,
  showLatency,
  showLoss,
} from "../app/emulation.ts";

const form = (f: Partial<{ latency: string; loss: string; capacity: string; toward: string }>) => ({
  latency: "",
  loss: "",
  capacity: "",
  toward: "",
  ...f,
});

test("a link's row, then one per direction with the link's values and its own in their place", () => {
  const rows = directionRows({ latency: 10, capacity: 10e6, toward: [{ node: "a", latency: 30 }] });
  assert.deepEqual(rows, [
    { toward: undefined, values: { latency: 10, capacity: 10e6 }, own: [] },
    { toward: "a", values: { latency: 30, capacity: 10e6 }, own: ["latency"] },
  ]);
  assert.deepEqual(directionRows({ loss: 0.01 }), [{ toward: undefined, values: { loss: 0.01 }, own: [] }]);
  assert.equal(showLatency(rows[1]?.values.latency), "30 ms");
  assert.equal(showCapacity(10e6), "10 Mbit/s");
  assert.equal(showLoss(0.015), "1.5 %");
  assert.equal(showLoss(undefined), "—");
});

test("the form converts ms, % and Mbit/s to the API's ms, fraction and bits/s", () => {
  assert.deepEqual(emulationChange(form({ latency: "50", toward: "b" })), { change: { latency: 50 }, toward: "b" });
  assert.deepEqual(emulationChange(form({ loss: "1.5%", capacity: " 2.5 " })), {
    change: { loss: 0.015, capacity: 2.5e6 },
  });
  assert.deepEqual(emulationChange(form({ latency: "0", loss: "0" })), { change: { latency: 0, loss: 0 } });
  assert.deepEqual(emulationChange(form({ latency: "10000", loss: "100" })), { change: { latency: 10_000, loss: 1 } });
});

test("the form refuses what the API would, naming the field and what is valid", () => {
  const bad = (f: Parameters<typeof form>[0]) => {
    const r = emulationChange(form(f));
    assert.ok("errors" in r, `refused: ${JSON.stringify(f)}`);
    return r.errors;
  };
  assert.match(bad({ loss: "150" }).loss ?? "", /Loss '150': give a percentage from 0 to 100/);
  assert.match(bad({ latency: "-1" }).latency ?? "", /from 0 to 10000/);
  assert.match(bad({ latency: "10001" }).latency ?? "", /from 0 to 10000/);
  assert.match(bad({ latency: "5ms" }).latency ?? "", /Latency '5ms'/);
  assert.match(bad({ capacity: "0" }).capacity ?? "", /greater than 0/);
  assert.match(bad({ capacity: "1e3" }).capacity ?? "", /Capacity '1e3'/);
  assert.match(bad({}).form ?? "", /Give a latency, a loss or a capacity/);
  // Every bad field is named at once.
  assert.deepEqual(Object.keys(bad({ latency: "x", loss: "101" })).sort(), ["latency", "loss"]);
});

test("directions to choose: the link's endpoints and nodes already set apart, once each", () => {
  assert.deepEqual(directionChoices(["b", "a"], { latency: 1, toward: [{ node: "a", latency: 3 }] }), ["a", "b"]);
  assert.deepEqual(directionChoices([], { toward: [{ node: "c" }] }), ["c"]);
  assert.deepEqual(directionChoices(["a", "b"], undefined), ["a", "b"]);
});

test("a summary in people's units, from the XIR's ns or the portal's ms", () => {
  assert.equal(emulationSummary(fromXirUnits({ latency: 30e6, capacity: 2e6 })), "30 ms, 2 Mbit/s");
  assert.equal(emulationSummary({ loss: 0.01 }), "1 % loss");
  assert.equal(emulationSummary({}), "");
});
