// Infranets across three facilities when one of them reaches the others through gateways on
// different hosts: phobos runs over three host agents (h1 carries its nodes and infrapod,
// h2 the gateway toward deimos, h3 the one toward site3), deimos and site3 on one machine
// each, all joined by the emulated wide area (15 ms one way). The infrapod on h1 routes each
// peer's infranet through its own gateway host: one tunnel `gwt` to both, a link slot each.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { SECOND_FACILITY } from "@merge/facility";
import { listNetns } from "@merge/facility/linux";
import { skip } from "@merge/facility/testing/linux";
import { phobos, spreadOverHosts } from "@merge/facility-model";
import type { Facility, Realization } from "@merge/xir";
import {
  compiledHere,
  crossingAnswers,
  dematerializeEverywhere,
  fastest,
  hostPrefix,
  type MultiStack,
  pings,
  placeOf,
  startMulti,
} from "./multi-fixture.ts";

/** Seven bare-metal nodes in a line: no two facilities (three metal-capable nodes each) can hold them. */
const LINE7 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("line7", addressing.ipv4, routing.static);
const n = ["a", "b", "c", "d", "e", "f", "g"].map((x) => net.node(x, image("busybox"), metal()));
for (let i = 0; i + 1 < n.length; i++) net.connect([n[i]!, n[i + 1]!]);
export default net;
`;

const THIRD_FACILITY = "site3";

const noWg = spawnSync("wg", ["--version"]).status !== 0 ? "wireguard-tools is not installed" : false;

/**
 * phobos with two gateways of one inter-facility port each (so the interconnect toward deimos takes gw0 and
 * the one toward site3 gw1), over h1 (nodes, infrapod), h2 (gw0) and h3 (gw1).
 */
function overThreeHosts(): Facility {
  const f = spreadOverHosts(phobos({ gateways: 2, gatewayPorts: 1 }), ["h1"]);
  const gatewayHost: Record<string, string> = { gw0: "h2", gw1: "h3" };
  return { ...f, resources: f.resources.map((r) => (r.kind === "gateway" ? { ...r, host: gatewayHost[r.id] } : r)) };
}

const PROJECT = `xgws${randomBytes(2).toString("hex")}`;

describe("infranets through gateways on different hosts", { skip: skip || noWg }, () => {
  let stack: MultiStack;
  before(async () => {
    stack = await startMulti({
      backend: "linux",
      models: [overThreeHosts(), phobos({ name: SECOND_FACILITY }), phobos({ name: THIRD_FACILITY })],
    });
  });
  after(async () => {
    await stack?.close();
  });

  test("the infrapod on h1 routes deimos's infranet via h2 and site3's via h3, both ways", async () => {
    const experiment = "line7";
    const project = `${PROJECT}${experiment}`;
    await stack.accepted(project, experiment, JSON.stringify(await compiledHere(LINE7)), "xir");
    const mz = `r1.${experiment}.${project}`;
    const rz = (await stack.admin.realization(project, experiment, "r1")).realization as Realization;
    try {
      const up = await stack.mrg(["materialize", mz, "--timeout", "300"]);
      assert.equal(up.code, 0, up.stderr);
      const st = JSON.parse((await stack.mrg(["show", "materialization", mz, "--json"])).stdout) as {
        status: string;
        nodes: { node: string; facility: string; infranet?: string }[];
      };
      assert.equal(st.status, "active", JSON.stringify(st));
      const at = (facility: string) => {
        const n = st.nodes.find((x) => x.facility === facility);
        assert.ok(n?.infranet, `a node of ${mz} at ${facility} with an infranet address: ${JSON.stringify(st.nodes)}`);
        return { ...placeOf(stack, mz, rz, n.node), address: n.infranet };
      };
      const a = at("phobos");
      assert.equal(a.host, "h1", "phobos's nodes are on h1");

      // Each gateway namespace is on its own host; the infrapod's host has none.
      assert.ok(listNetns().includes(`${hostPrefix(stack, mz, "h2")}-g`), "a gateway namespace on h2");
      assert.ok(listNetns().includes(`${hostPrefix(stack, mz, "h3")}-g`), "a gateway namespace on h3");
      assert.ok(!listNetns().includes(`${hostPrefix(stack, mz, "h1")}-g`), "no gateway namespace on h1");
      const routes = spawnSync("ip", ["-n", `${hostPrefix(stack, mz, "h1")}-i`, "route", "show", "dev", "gwt"], {
        encoding: "utf8",
      }).stdout;
      const vias = [...routes.matchAll(/via (169\.254\.0\.\d+)/g)].map((m) => m[1]).sort();
      assert.deepEqual(vias, ["169.254.0.5", "169.254.0.9"], `two peers, each via its gateway host: ${routes}`);

      for (const facility of [SECOND_FACILITY, THIRD_FACILITY]) {
        const b = at(facility);
        crossingAnswers(a, b);
        assert.ok(fastest(pings(a.netns, b.address, 3)) >= 30, `${a.node}@h1 reaches ${b.node}@${facility}'s infranet`);
        assert.ok(fastest(pings(b.netns, a.address, 3)) >= 30, `${b.node}@${facility} reaches ${a.node}'s infranet`);
      }
    } finally {
      await dematerializeEverywhere(stack, mz);
    }
  });
});
