import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { fragmentsFor, fragmentToPb, synthetic } from "@merge/materialize";
import * as pb from "@merge/proto";
import { openStore, type Store } from "@merge/store";
import { certFiles, loadTls, makeCerts } from "../src/certs.ts";
import { type Commander, startCommander } from "../src/commander.ts";
import { Driver } from "../src/driver.ts";
import { type DriverServer, startDriverServer } from "../src/driver-service.ts";
import { tlsClient } from "../src/grpc.ts";
import type { Rex } from "../src/rex.ts";
import type { SimBackend } from "../src/sim/sim.ts";
import { startRex } from "./fixture.ts";

const tmp = mkdtempSync(join(tmpdir(), "mrg-cmdr-"));
const certs = join(tmp, "certs");
const otherCerts = join(tmp, "other");
let store: Store;
let commander: Commander;
let driverServer: DriverServer;
let rex: Rex;
let backend: SimBackend;
const s = synthetic(100, { mzid: "e2e.exp.proj", lanSize: 10 });

before(async () => {
  makeCerts(certs, { facility: "simfac" });
  makeCerts(otherCerts, { facility: "intruder", roles: ["portal"] });
  store = openStore({ backend: "sqlite", dir: join(tmp, "store") });
  commander = await startCommander({ tls: loadTls(certFiles(certs, "commander")) });
  driverServer = await startDriverServer({
    driver: new Driver(store),
    tls: loadTls(certFiles(certs, "driver")),
    name: "driver-0",
    resources: s.facility.resources.map((r) => r.id),
    registry: commander.registry.url,
  });
  ({ rex, backend } = await startRex(
    store,
    { durations: { imaging: 300, power: 20, network: 5, infrapod: 20 } },
    { concurrency: 128 },
  ));
});

after(async () => {
  await rex?.stop();
  await driverServer?.close();
  await commander?.close();
  await store?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const portal = () => tlsClient(pb.FacilityService, commander.facility.url, loadTls(certFiles(certs, "portal")));

test("certificates: keys and certificates are 0600 in a 0700 directory", () => {
  assert.equal(statSync(certs).mode & 0o777, 0o700);
  for (const role of ["commander", "portal", "driver"] as const) {
    const f = certFiles(certs, role);
    assert.equal(statSync(f.key).mode & 0o777, 0o600);
    assert.equal(statSync(f.cert).mode & 0o777, 0o600);
  }
});

test("mTLS: a portal without a certificate is refused", async () => {
  const transport = createGrpcTransport({
    baseUrl: commander.facility.url,
    nodeOptions: { ca: loadTls(certFiles(certs, "portal")).ca },
  });
  const client = createClient(pb.FacilityService, transport);
  await assert.rejects(() => client.status({ mzid: "e2e.exp.proj" }), ConnectError);
});

test("mTLS: a certificate from another CA is refused", async () => {
  const wrong = loadTls(certFiles(otherCerts, "portal"));
  const client = tlsClient(pb.FacilityService, commander.facility.url, {
    ...wrong,
    ca: loadTls(certFiles(certs, "portal")).ca,
  });
  await assert.rejects(() => client.status({ mzid: "e2e.exp.proj" }), ConnectError);
});

test("roles: a driver certificate may not call the portal API, a portal certificate may not register", async () => {
  const asDriver = tlsClient(pb.FacilityService, commander.facility.url, loadTls(certFiles(certs, "driver")));
  await assert.rejects(
    () => asDriver.status({ mzid: "e2e.exp.proj" }),
    (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && /role 'driver'/.test(e.message),
  );
  const asPortal = tlsClient(pb.RegistryService, commander.registry.url, loadTls(certFiles(certs, "portal")));
  await assert.rejects(
    () => asPortal.register({ driver: "evil", endpoint: "https://127.0.0.1:1", resources: ["m0"] }),
    (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied,
  );
  assert.deepEqual(
    commander.drivers().map((d) => d.name),
    ["driver-0"],
  );
});

test("unknown resource ids come back as errors, and bad fragments as invalid arguments", async () => {
  const other = synthetic(2, { mzid: "unk.exp.proj", facility: "simfac" });
  const fragments = fragmentsFor(other.realization, other.experiment, other.facility).map(fragmentToPb);
  const nowhere = fragments.map((f) => ({ ...f, resource: `ghost-${f.resource}` }));
  const r = await portal().materialize({ mzid: "unk.exp.proj", fragments: nowhere });
  assert.equal(r.accepted, 0);
  assert.equal(r.errors.length, fragments.length);
  assert.match(r.errors[0]!.message, /no driver serves resource 'ghost-ifr0'/);
  const bad = await portal().materialize({ mzid: "Not An Id", fragments: fragments.slice(0, 1) });
  assert.equal(bad.accepted, 0);
  assert.match(
    bad.errors[0]!.message,
    /driver driver-0: materialization id 'Not An Id' is not 'realization\.experiment\.project'/,
  );
});

test("end to end: portal → commander → driver → rex → sim, 100 nodes, then dematerialize", async () => {
  const client = portal();
  const mzid = "e2e.exp.proj";
  const fragments = fragmentsFor(s.realization, s.experiment, s.facility).map(fragmentToPb);
  const resources = [...new Set(fragments.map((f) => f.resource))];
  assert.deepEqual((await client.notifyIncoming({ mzid, resources })).errors, []);
  const r = await client.materialize({ mzid, fragments });
  assert.deepEqual(r.errors, []);
  assert.equal(r.accepted, fragments.length);
  // A retry of the same request is harmless.
  assert.deepEqual((await client.materialize({ mzid, fragments })).errors, []);

  const seen: pb.MzStatus[] = [];
  let last: pb.StatusResponse | undefined;
  for await (const u of client.watchStatus({ mzid, resources })) {
    seen.push(u.status!.status);
    last = u.status;
  }
  assert.equal(last?.status, pb.MzStatus.ACTIVE);
  assert.ok(seen.includes(pb.MzStatus.MATERIALIZING), "the stream showed progress before active");
  assert.equal(last?.nodes.length, 100);
  assert.ok(last?.nodes.every((n) => n.current === pb.NodeState.READY && n.target === pb.NodeState.READY));
  assert.equal(last?.links.length, s.realization.links.length);
  assert.ok(last?.links.every((l) => l.action === pb.ActionState.COMPLETE));
  assert.equal(last?.infrapodAddress, "172.31.0.1");
  assert.equal(backend.links.size, s.realization.links.length);
  assert.equal([...backend.nodes.values()].filter((n) => n.state === "ready").length, 100);

  assert.deepEqual((await client.dematerialize({ mzid, fragments })).errors, []);
  let final: pb.StatusResponse | undefined;
  for await (const u of client.watchStatus({ mzid, resources })) final = u.status;
  assert.equal(final?.status, pb.MzStatus.DEMATERIALIZED);
  assert.deepEqual((await client.notifyTeardown({ mzid, resources })).errors, []);
  assert.equal([...backend.nodes.values()].filter((n) => n.state === "clean").length, 100);
  assert.equal(backend.links.size, 0);
  assert.equal(backend.infrapods.size, 0);
});

test("a driver's own status stream follows the store until the materialization is active", async () => {
  const small = synthetic(5, { mzid: "watch.exp.proj", lanSize: 5 });
  const asCommander = tlsClient(pb.FacilityService, driverServer.url, loadTls(certFiles(certs, "commander")));
  const fragments = fragmentsFor(small.realization, small.experiment, small.facility).map(fragmentToPb);
  await asCommander.materialize({ mzid: "watch.exp.proj", fragments });
  const seen: pb.MzStatus[] = [];
  for await (const u of asCommander.watchStatus({ mzid: "watch.exp.proj" })) seen.push(u.status!.status);
  assert.equal(seen.at(-1), pb.MzStatus.ACTIVE);
  assert.ok(seen.length >= 2, `saw ${seen.length} updates`);
  // Drivers accept only the commander.
  const asPortal = tlsClient(pb.FacilityService, driverServer.url, loadTls(certFiles(certs, "portal")));
  await assert.rejects(
    () => asPortal.status({ mzid: "watch.exp.proj" }),
    (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied,
  );
});
