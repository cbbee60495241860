/** The links table's rows per direction and the emulation form's checks and units (app/emulation.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  directionChoices,
  directionRows,
  emulationChange,
  emulationSummary,
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
  const rows = directionRows({ latency: 10e6, capacity: 10e6, toward: [{ node: "a", latency: 30e6 }] });
  assert.deepEqual(rows, [
    { toward: undefined, values: { latency: 10e6, capacity: 10e6 }, own: [] },
    { toward: "a", values: { latency: 30e6, capacity: 10e6 }, own: ["latency"] },
  ]);
  assert.deepEqual(directionRows({ loss: 0.01 }), [{ toward: undefined, values: { loss: 0.01 }, own: [] }]);
  assert.equal(showLatency(rows[1]?.values.latency), "30 ms");
  assert.equal(showCapacity(10e6), "10 Mbit/s");
  assert.equal(showLoss(0.015), "1.5%");
  assert.equal(showLoss(undefined), "—");
});

test("the form converts ms, % and Mbit/s (or typed units) to the API's ns, fraction and bit/s", () => {
  assert.deepEqual(emulationChange(form({ latency: "50", toward: "b" })), { change: { latencyNs: 50e6 }, toward: "b" });
  assert.deepEqual(emulationChange(form({ loss: "1.5%", capacity: " 2.5 " })), {
    change: { lossFraction: 0.015, capacityBps: 2.5e6 },
  });
  assert.deepEqual(emulationChange(form({ latency: "0", loss: "0" })), { change: { latencyNs: 0, lossFraction: 0 } });
  assert.deepEqual(emulationChange(form({ latency: "10000", loss: "100" })), {
    change: { latencyNs: 10e9, lossFraction: 1 },
  });
  assert.deepEqual(emulationChange(form({ latency: "1.5s", capacity: "500kbit" })), {
    change: { latencyNs: 1.5e9, capacityBps: 500e3 },
  });
});

test("the form refuses what the API would, naming the field and what is valid", () => {
  const bad = (f: Parameters<typeof form>[0]) => {
    const r = emulationChange(form(f));
    assert.ok("errors" in r, `refused: ${JSON.stringify(f)}`);
    return r.errors;
  };
  assert.match(bad({ loss: "150" }).loss ?? "", /Loss '150': give a percentage from 0 to 100/);
  assert.match(bad({ latency: "-1" }).latency ?? "", /Latency '-1': expected a duration, one of ns, us, µs, ms, s/);
  assert.match(bad({ latency: "10001" }).latency ?? "", /Latency '10001': give at most 10 s/);
  assert.match(bad({ latency: "5kg" }).latency ?? "", /Latency '5kg'/);
  assert.match(bad({ capacity: "0" }).capacity ?? "", /greater than 0/);
  assert.match(bad({ capacity: "1e3" }).capacity ?? "", /Capacity '1e3'/);
  assert.match(bad({}).form ?? "", /Give a latency, a loss or a capacity/);
  // Every bad field is named at once.
  assert.deepEqual(Object.keys(bad({ latency: "x", loss: "101" })).sort(), ["latency", "loss"]);
});

test("directions to choose: the link's endpoints and nodes already set apart, once each", () => {
  assert.deepEqual(directionChoices(["b", "a"], { latency: 1e6, toward: [{ node: "a", latency: 3e6 }] }), ["a", "b"]);
  assert.deepEqual(directionChoices([], { toward: [{ node: "c" }] }), ["c"]);
  assert.deepEqual(directionChoices(["a", "b"], undefined), ["a", "b"]);
});

test("a summary in people's units, from XIR's base units", () => {
  assert.equal(emulationSummary({ latency: 30e6, capacity: 2e6 }), "30 ms, 2 Mbit/s");
  assert.equal(emulationSummary({ loss: 0.01 }), "1% loss");
  assert.equal(emulationSummary({}), "");
});
