// Prometheus metrics, scraped over HTTP as Prometheus would: the portal's
// /metrics (administrators only) and a facility's metrics listener, after a
// real materialization on the sim backend went through the commander and rex.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type MetricsServer, SimBackend, serveMetrics } from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";
import { PortalClient } from "@merge/portal/client";
import { type PortalStack, startPortalStack } from "./portal-stack.ts";

const tmp = mkdtempSync(join(tmpdir(), "merge-metrics-"));
let stack: PortalStack;
let served: MetricsServer | undefined;

before(async () => {
  stack = await startPortalStack(tmp, new SimBackend({ durations: { imaging: 5, power: 2, network: 1, infrapod: 2 } }));
});
after(() => closeThenRemove(tmp, served, stack));

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").at(-1));
  }
  return undefined;
}

test("portal and commander metrics after a materialization: requests by route, states, rex actions and task durations", async () => {
  const demo = readFileSync(new URL("../../../examples/demo.ts", import.meta.url), "utf8");
  await stack.accepted("mx", "demo", demo, "ts");
  const up = await stack.mrg(["materialize", "r1.demo.mx", "--timeout", "60"]);
  assert.equal(up.code, 0, up.stderr);

  // The portal: only administrators read it.
  const url = `${stack.portal.url}/metrics`;
  assert.equal((await fetch(url)).status, 401);
  const anon = new PortalClient(stack.portal.url);
  await anon.register({ name: "moe", email: "moe@example.org", password: "moe-secret-pw" });
  await stack.admin.setUserState("moe", "active");
  const moe = (await anon.login("moe", "moe-secret-pw")).token;
  assert.equal((await fetch(url, { headers: { authorization: `Bearer ${moe}` } })).status, 403);
  const res = await fetch(url, { headers: { authorization: `Bearer ${stack.admin.token}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const portal = await res.text();
  const realize = "/projects/:project/experiments/:experiment/realizations";
  assert.equal(
    sample(portal, "merge_portal_http_requests_total", { method: "POST", route: realize, status: "201" }),
    1,
  );
  assert.ok(
    (sample(portal, "merge_portal_http_request_duration_seconds_count", { method: "POST", route: realize }) ?? 0) >= 1,
  );
  assert.ok(
    (sample(portal, "merge_portal_http_requests_total", { route: "/metrics" }) ?? 0) === 0,
    "scrapes are not counted",
  );
  assert.equal(sample(portal, "merge_portal_realizations", { state: "accepted" }), 1);
  assert.equal(sample(portal, "merge_portal_materializations", { state: "materializing" }), 1);
  assert.ok(sample(portal, "merge_portal_process_cpu_seconds_total", {}) !== undefined);

  // The facility: its own listener, plain HTTP on loopback.
  served = await serveMetrics(stack.facility.metrics.registry);
  assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const fac = await (await fetch(served.url)).text();
  assert.ok(
    (sample(fac, "merge_commander_requests_total", { method: "Materialize", code: "ok" }) ?? 0) >= 1,
    fac
      .split("\n")
      .filter((l) => /^merge_(commander|rex|facility_(tasks|task_|materializations))/.test(l))
      .join("\n"),
  );
  assert.ok((sample(fac, "merge_commander_request_duration_seconds_count", { method: "Status" }) ?? 0) >= 1);
  const done = sample(fac, "merge_rex_actions_total", { outcome: "complete" }) ?? 0;
  assert.ok(done > 0, "rex completed actions");
  assert.equal(sample(fac, "merge_rex_action_duration_seconds_count", { outcome: "complete" }), done);
  const tasks = sample(fac, "merge_facility_tasks", { state: "done" }) ?? 0;
  assert.ok(tasks > 0);
  assert.equal(sample(fac, "merge_facility_task_duration_seconds_count", { phase: "setup" }), tasks);
  assert.equal(sample(fac, "merge_facility_tasks", { state: "failed" }), undefined);
  assert.equal(sample(fac, "merge_facility_materializations", { phase: "materializing" }), 1);
  assert.equal((await fetch(served.url.replace("/metrics", "/other"))).status, 404);

  // Who materialized what: the audit log has it.
  const audit = await stack.admin.audit({ action: "materialize" });
  assert.deepEqual(
    audit.map((e) => `${e.actor} ${e.target} ${e.ok}`),
    ["admin r1.demo.mx true"],
  );
});
