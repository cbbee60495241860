/**
 * `disk.capacity` follows MergeTB: the extra disk a virtual node gets beyond
 * its root file system. The allocation counts both (the hypervisor's disk
 * holds them), the embedding says which part is the root, and the checker
 * judges the model's constraint against the extra part.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AllocationTable, checkRealizations, formatProblem, realize, VM_DEFAULTS } from "@merge/realize";
import type { ResourceInternet } from "@merge/xir";
import { c, experiment, facility, GiB, node, nodes } from "./fixtures.ts";

/** Two hypervisors with `disk` GiB of disk each. */
function hypervisors(disk: number): ResourceInternet {
  const f = facility({
    name: "f",
    racks: [
      nodes("h", 2, {
        alloc: ["virtual"],
        props: { "proc.cores": 8, "memory.capacity": 32 * GiB, "disk.capacity": disk * GiB },
      }),
    ],
  });
  return { facilities: [f], interconnects: [] };
}

describe("disk.capacity is extra disk beyond the root file system", () => {
  test("a node asking 20 GiB takes root + 20 GiB; one asking nothing takes the root alone", () => {
    const net = hypervisors(1024);
    const x = experiment(
      "disks",
      [node("a", [c("disk.capacity", ">=", 20 * GiB)]), node("b", [])],
      [{ ends: ["a", "b"] }],
    );
    const r = realize(x, net, new AllocationTable(), { id: "r.disks.p" });
    if (!r.ok) assert.fail(r.problems.map(formatProblem).join("; "));
    const by = new Map(r.realization.nodes.map((n) => [n.node, n.alloc]));
    assert.equal(by.get("a")?.root, VM_DEFAULTS.disk);
    assert.equal(by.get("a")?.disk, VM_DEFAULTS.disk + 20 * GiB);
    assert.equal(by.get("b")?.disk, VM_DEFAULTS.disk);
    assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
  });

  test("an exact ask (==) is met by the extra part, and the checker refuses an embedding whose extra is short", () => {
    const net = hypervisors(1024);
    const x = experiment(
      "exact",
      [node("a", [c("disk.capacity", "==", 5 * GiB)]), node("b", [])],
      [{ ends: ["a", "b"] }],
    );
    const r = realize(x, net, new AllocationTable(), { id: "r.exact.p" });
    if (!r.ok) assert.fail(r.problems.map(formatProblem).join("; "));
    assert.deepEqual(checkRealizations(net, [{ experiment: x, realization: r.realization }]), []);
    const a = r.realization.nodes.find((n) => n.node === "a")!;
    a.alloc = { ...a.alloc, disk: a.alloc.disk - GiB };
    const problems = checkRealizations(net, [{ experiment: x, realization: r.realization }]);
    const said = JSON.stringify(problems);
    assert.match(said, /node a: disk\.capacity == 5368709120 not met by h\d/);
  });

  test("the root counts against the hypervisor: 25 GiB of disk cannot give 20 GiB beyond a 10 GiB root", () => {
    const net = hypervisors(25);
    const x = experiment(
      "big",
      [node("a", [c("disk.capacity", ">=", 20 * GiB)]), node("b", [])],
      [{ ends: ["a", "b"] }],
    );
    const r = realize(x, net, new AllocationTable(), { id: "r.big.p" });
    assert.equal(r.ok, false);
    const why = r.ok ? "" : r.problems.map(formatProblem).join("; ");
    assert.match(
      why,
      /node a: disk\.capacity >= 20 GiB: no resource in the resource internet has more; the largest has 15 GiB beyond a VM's 10 GiB root file system/,
    );
  });
});
