// The realization engine avoids drained and down hosts: a real portal asks a real
// facility of two hosts (commander, driver, rex, host registry; host agents on the
// sim backend) for its hosts' state, and realizes around the ones not up.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  certFiles,
  loadTls,
  makeHostCert,
  type RunningAgent,
  SimBackend,
  setDrained,
  startHostAgent,
  synthetic,
} from "@merge/facility";
import { readFacilityHosts } from "@merge/portal";
import type { Facility } from "@merge/xir";
import { type PortalStack, startPortalStack } from "./portal-stack.ts";

const tmp = mkdtempSync(join(tmpdir(), "mrg-hosts-realize-"));
// Six physical nodes, m0 m2 m4 on h1 and m1 m3 m5 on h2; the infrapod server on the facility's own machine.
const model: Facility = synthetic(6, { hosts: ["h1", "h2"] }).facility;
for (const r of model.resources) if (r.kind !== "node") delete r.host;
const H1 = ["m0", "m2", "m4"];
const H2 = ["m1", "m3", "m5"];

let stack: PortalStack;
const agents = new Map<string, RunningAgent>();

async function startAgent(name: string): Promise<void> {
  const dir = join(tmp, `${name}-certs`);
  makeHostCert(join(tmp, "certs"), dir, name);
  const agent = await startHostAgent({
    name,
    backend: new SimBackend({ strict: false }),
    tls: loadTls(certFiles(dir, "host")),
    registry: stack.facility.hostRegistryUrl as string,
    underlay: "127.0.0.1",
    dataDir: tmp,
    heartbeatMs: 300,
  });
  await agent.registered;
  agents.set(name, agent);
}

/** Until the portal has seen the facility report `want` (host → state). */
async function portalSees(want: Record<string, string>): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    const f = (await readFacilityHosts(stack.portal.store)).find((x) => x.facility === model.name);
    const got = Object.fromEntries((f?.hosts ?? []).map((h) => [h.name, h.state]));
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    if (Date.now() > end) throw new Error(`the portal sees ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const nodes = (n: number) => `
import { Network, addressing, routing } from "@merge/model";
const net = new Network("spread", addressing.ipv4, routing.static);
for (let i = 0; i < ${n}; i++) net.node("a" + i);
export default net;
`;

/** Realize `n` nodes as `name` of experiment `x<n>` (pushed once); the realization as the portal answers. */
async function realize(n: number, name: string) {
  const xs = await stack.admin.experiments("hosts");
  if (!xs.some((x) => x.name === `x${n}`)) {
    await stack.admin.createExperiment("hosts", { name: `x${n}` });
    const rev = await stack.admin.push("hosts", `x${n}`, nodes(n), "ts");
    assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
  }
  return stack.admin.realize("hosts", `x${n}`, { name });
}

/** The nodes' resources a realization holds (`facility/resource`), by resource name. */
const resourcesOf = (r: { resources: string[] }) =>
  r.resources
    .map((x) => x.slice(x.indexOf("/") + 1))
    .filter((x) => /^m\d/.test(x))
    .sort();

before(async () => {
  stack = await startPortalStack(tmp, new SimBackend({ strict: false }), {
    model,
    hostPollMs: 150,
    facility: { hostLeaseTtl: 2, underlay: "127.0.0.1" },
  });
  for (const f of ["ca.pem", "portal.pem", "portal-key.pem"])
    cpSync(join(tmp, "certs", f), join(tmp, "creds", model.name, f));
  await stack.admin.createProject({ name: "hosts" });
});

after(async () => {
  for (const a of agents.values()) await a.close();
  await stack?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test("realization avoids drained and down hosts, and a failure names the host", async () => {
  // No agent yet: both hosts are down, nothing is realizable, and the failure says why.
  await portalSees({ h1: "down", h2: "down" });
  const none = await realize(1, "r0");
  assert.equal(none.state, "failed");
  assert.ok(
    none.diagnostics.some((d) => /host h1 is down/.test(d) && /m0, m2, m4/.test(d)),
    none.diagnostics.join("\n"),
  );
  assert.ok(none.diagnostics.some((d) => /host h2 is down/.test(d)));

  await startAgent("h1");
  await startAgent("h2");
  await portalSees({ h1: "up", h2: "up" });

  // h2 drained: four nodes do not fit on h1's three; three do, all on h1.
  await setDrained(stack.store, "h2", true);
  await portalSees({ h1: "up", h2: "drained" });
  const four = await realize(4, "r1");
  assert.equal(four.state, "failed");
  assert.ok(
    four.diagnostics.some((d) => /^host h2 is drained \(facility simfac\)/.test(d)),
    four.diagnostics.join("\n"),
  );
  const three = await realize(3, "r1");
  assert.equal(three.state, "pending", three.diagnostics.join("\n"));
  assert.deepEqual(resourcesOf(three), H1, "a drained host gets no new nodes");
  await stack.admin.relinquish("hosts", "x3", "r1");

  // h2 undrained, h1's agent gone: h1 is down, so the same three go to h2.
  await setDrained(stack.store, "h2", false);
  await agents.get("h1")?.close();
  await portalSees({ h1: "down", h2: "up" });
  const onH2 = await realize(3, "r2");
  assert.equal(onH2.state, "pending", onH2.diagnostics.join("\n"));
  assert.deepEqual(resourcesOf(onH2), H2, "a down host gets no new nodes");
  await stack.admin.relinquish("hosts", "x3", "r2");

  // h1 back: all six are usable again.
  await startAgent("h1");
  await portalSees({ h1: "up", h2: "up" });
  const six = await realize(6, "r3");
  assert.equal(six.state, "pending", six.diagnostics.join("\n"));
  assert.deepEqual(resourcesOf(six), [...H1, ...H2].sort());
});
