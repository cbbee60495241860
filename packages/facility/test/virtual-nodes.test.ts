// Virtual nodes have a state machine each: two materializations whose VMs share
// one hypervisor both come up, show each VM's own state, and tearing one down
// leaves the other's VMs (and the hypervisor, out of the harbor) as they were;
// each VM's status carries the profile its setup reported.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fragmentsFor, nodeProfileFromPb, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import type { Realization } from "@merge/xir";
import { Driver, harborNodes } from "../src/driver.ts";
import { keys, type NodeRecord } from "../src/task.ts";
import { statusToPb } from "../src/wire.ts";
import { startRex, statusIs, until } from "./fixture.ts";

const store = openMemoryStore();
after(() => store.close());

/** Two nodes, both VMs on the hypervisor m0. */
function onHypervisor(mzid: string) {
  const s = synthetic(2, { mzid, lanSize: 2 });
  const m0 = s.facility.resources.find((r) => r.id === "m0")!;
  m0.alloc = ["virtual"];
  const rlz: Realization = s.realization;
  // n0 asks for half its core (cpu.share): the sim gives what is asked.
  s.experiment.nodes[0]!.constraints.push({ prop: "cpu.share", op: "==", value: 0.5 });
  for (const n of rlz.nodes) {
    n.resource = "m0";
    n.mode = "virtual";
    n.kind = "vm";
    n.alloc = { cores: 1, memory: 2 ** 30, disk: 0 };
    for (const i of n.interfaces) i.virtual = true;
  }
  return { ...s, fragments: fragmentsFor(rlz, s.experiment, s.facility) };
}

test("VMs of two materializations on one hypervisor each have their own state", async () => {
  const a = onHypervisor("a.exp.proj");
  const b = onHypervisor("b.exp.proj");
  const driver = new Driver(store);
  const { rex } = await startRex(store, { durations: { imaging: 5, power: 1, network: 1, infrapod: 1 } });
  try {
    await store.put(
      keys.harbor(),
      JSON.stringify({
        name: "main.harbor.simfac",
        infranet: { vni: 1, subnet: "172.30.0.0/16", gateway: "172.30.0.1" },
        server: "ifr0",
        resources: [
          { id: "m0", address: "172.30.0.2", mac: "02:00:00:00:00:01" },
          { id: "m1", address: "172.30.0.3", mac: "02:00:00:00:00:02" },
        ],
      }),
    );
    await driver.materialize("a.exp.proj", a.fragments);
    await driver.materialize("b.exp.proj", b.fragments);
    const sa = await statusIs(driver, "a.exp.proj", "active");
    const sb = await statusIs(driver, "b.exp.proj", "active");
    // Each VM's setup reported its profile; the node status carries it, across the wire.
    const wired = statusToPb("a.exp.proj", sa).nodes.map((n) => [n.node, nodeProfileFromPb(n.profile)]);
    assert.deepEqual(wired.sort(), [
      ["n0", { kind: "vm", cores: 1, memoryMiB: 1024, cpuCap: 0.5 }],
      ["n1", { kind: "vm", cores: 1, memoryMiB: 1024, cpuCap: 1 }],
    ]);
    for (const s of [sa, sb]) {
      assert.deepEqual(
        s.nodes.map((n) => [n.node, n.current]).sort(),
        [
          ["n0", "ready"],
          ["n1", "ready"],
        ],
        "one record per VM, each ready",
      );
    }
    let harbor = await harborNodes(store);
    assert.deepEqual(
      harbor?.nodes.map((n) => [n.resource, n.state, n.carrying.map((c) => `${c.mzid}:${c.node}`).sort()]),
      [
        ["m0", "allocated", ["a.exp.proj:n0", "a.exp.proj:n1", "b.exp.proj:n0", "b.exp.proj:n1"]],
        ["m1", "standby", []],
      ],
    );

    await driver.dematerialize("a.exp.proj", a.fragments);
    await until("a.exp.proj gone", async () =>
      (await driver.list()).some((i) => i.mzid === "a.exp.proj") ? undefined : true,
    );
    const still = await driver.status("b.exp.proj");
    assert.deepEqual(
      still.nodes.map((n) => n.current),
      ["ready", "ready"],
      "b's VMs are untouched by a's teardown",
    );
    harbor = await harborNodes(store);
    assert.deepEqual(harbor?.nodes[0]?.carrying.map((c) => `${c.mzid}:${c.node}`).sort(), [
      "b.exp.proj:n0",
      "b.exp.proj:n1",
    ]);
    await driver.dematerialize("b.exp.proj", b.fragments);
    await until("b.exp.proj gone", async () =>
      (await driver.list()).some((i) => i.mzid === "b.exp.proj") ? undefined : true,
    );
    harbor = await harborNodes(store);
    assert.deepEqual(
      harbor?.nodes.map((n) => n.state),
      ["standby", "standby"],
    );
    const rec = JSON.parse((await store.get(keys.node("m0/b.exp.proj/n1")))!.value) as NodeRecord;
    assert.deepEqual([rec.current, rec.target], ["clean", "clean"]);
  } finally {
    await rex.stop();
  }
});
