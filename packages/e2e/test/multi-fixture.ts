// Two (or more) facilities on this one machine behind a real portal: each its own
// process, commander, certificates, store and data plane, each in its own site,
// the sites joined by an emulated wide area (@merge/facility's startSites, which
// `npm start -- --facilities 2` starts too). The portal runs in this process with
// the materializations plugin, signed in as its administrator, and knows every
// facility and the interconnects between them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SECOND_FACILITY, type Sites, startSites } from "@merge/facility";
import { isClean, leftovers, listNetns, prefixOn } from "@merge/facility/linux";
import { fastest, pings } from "@merge/facility/testing/linux";
import { phobos } from "@merge/facility-model";
import { compileFile } from "@merge/model";
import type { PortalPlugin } from "@merge/portal";
import { type MaterializationStatus, type ModelLang, PortalClient, registerSites } from "@merge/portal/client";
import { type Started, startPortal } from "@merge/portal/main";
import { credentialsConnector, materializationPlugin } from "@merge/portal/materialize";
import type { Experiment, Facility, Realization } from "@merge/xir";
import { accepting, type MrgResult, mrgRunner } from "./portal-stack.ts";

/** Four bare-metal nodes in a line: one facility (three metal-capable nodes) cannot hold them. */
export const LINE4 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("line4", addressing.ipv4, routing.static);
const n = ["a", "b", "c", "d"].map((x) => net.node(x, image("busybox"), metal()));
for (let i = 0; i + 1 < n.length; i++) net.connect([n[i]!, n[i + 1]!]);
export default net;
`;

/**
 * A TypeScript model compiled here, as XIR: a loaded machine's portal may give up on compiling
 * it (its per-compile time limit), which is not what the multi-facility tests are about.
 */
export async function compiledHere(source: string): Promise<Experiment> {
  const dir = mkdtempSync(join(tmpdir(), "mrg-model-"));
  try {
    writeFileSync(join(dir, "model.ts"), source);
    const c = await compileFile(join(dir, "model.ts"));
    assert.ok(c.xir, `the model compiles: ${JSON.stringify(c.diagnostics)}`);
    return c.xir;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface MultiStack {
  tmp: string;
  portal: Started;
  admin: PortalClient;
  sites: Sites;
  /** New project and experiment with `source` pushed and realization `r1` accepted. */
  accepted(project: string, experiment: string, source: string, lang?: ModelLang): Promise<Experiment>;
  /** Runs `mrg` as the administrator. */
  mrg(args: string[], input?: string): Promise<MrgResult>;
  /** What the portal's materializer logged. */
  portalLog: string[];
  /** Stop the portal and start it again on its data directory and port (`portal` is the new one). */
  restartPortal(): Promise<void>;
  close(): Promise<void>;
}

export interface MultiOptions {
  backend: "linux" | "sim";
  /** Default: phobos and deimos (phobos's shape). */
  models?: Facility[];
  latencyNs?: number;
  rateBps?: number;
  /** More route plugins for the portal (the web UI, for browser tests). */
  plugins?: PortalPlugin[];
}

export async function startMulti(o: MultiOptions): Promise<MultiStack> {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-multi-"));
  const models = o.models ?? [phobos(), phobos({ name: SECOND_FACILITY })];
  let sites: Sites | undefined;
  let portal: Started | undefined;
  const close = async () => {
    try {
      await portal?.stop();
    } finally {
      await sites?.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  };
  try {
    sites = await startSites({
      dir: join(tmp, "facilities"),
      models,
      backend: o.backend,
      noHarbor: true,
      ...(o.latencyNs !== undefined ? { latencyNs: o.latencyNs } : {}),
      ...(o.rateBps !== undefined ? { rateBps: o.rateBps } : {}),
    });
    const creds = join(tmp, "creds");
    for (const f of sites.facilities)
      for (const file of ["ca.pem", "portal.pem", "portal-key.pem"])
        cpSync(join(f.certs, file), join(creds, f.name, file));
    const portalLog: string[] = [];
    const portalAt = (port: number) =>
      startPortal({
        dataDir: join(tmp, "portal"),
        port,
        // As portal-stack.ts: a small model's compile outlasted the default 45 s beside other tests on 2 cores.
        compile: { timeoutMs: 120_000 },
        plugins: [
          materializationPlugin({
            connect: credentialsConnector(creds),
            backoffMs: 200,
            log: (m) => portalLog.push(m),
          }),
          ...(o.plugins ?? []),
        ],
      });
    portal = await portalAt(0);
    assert.ok(portal.admin.password, "the portal made its administrator's password");
    const admin = new PortalClient(
      portal.url,
      (await new PortalClient(portal.url).login("admin", portal.admin.password)).token,
    );
    await registerSites(
      admin,
      sites.facilities.map((f) => ({ name: f.name, endpoint: f.url, certificate: f.ca, model: f.model })),
      sites.interconnects,
    );
    const accepted = accepting(admin);
    const mrg = mrgRunner(portal.url, admin.token, join(tmp, "cfg"));
    const stack: MultiStack = {
      tmp,
      portal,
      admin,
      sites,
      accepted,
      mrg,
      portalLog,
      async restartPortal() {
        const port = Number(new URL(stack.portal.url).port);
        await stack.portal.stop();
        portal = await portalAt(port);
        stack.portal = portal;
      },
      close,
    };
    return stack;
  } catch (e) {
    await close();
    throw e;
  }
}

/** The kernel object prefix of `mzid` at `facility`: facilities sharing a machine qualify their names with their own. */
export function facilityPrefix(mzid: string, facility: string): string {
  return `mg${createHash("sha256").update(`${mzid}@${facility}`).digest("hex").slice(0, 6)}`;
}

/**
 * Dematerializes `mz` (waiting up to `timeout` seconds) and asserts it left nothing at any facility (its
 * backend's records, its namespaces) and no tunnel process of it in a site.
 */
export async function dematerializeClean(stack: MultiStack, mz: string, timeout = 180): Promise<void> {
  const r = await stack.mrg(["dematerialize", mz, "--timeout", String(timeout)]);
  assert.equal(r.code, 0, r.stderr);
  for (const f of stack.sites.facilities) {
    const prefix = facilityPrefix(mz, f.name);
    const left = await leftovers(prefix, join(stack.tmp, "facilities", f.name, "backend"));
    assert.ok(isClean(left), `${f.name} left ${JSON.stringify(left)}`);
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(prefix)),
      [],
    );
  }
  const wg = spawnSync("pgrep", ["-a", "wireguard-go"], { encoding: "utf8" }).stdout;
  for (const f of stack.sites.facilities) assert.ok(!wg.includes(facilityPrefix(mz, f.name)), wg);
}

/** A host's kernel-name prefix for `mz`: qualified by its fabric's run, as its agent names things. */
export function hostPrefix(stack: MultiStack, mz: string, host: string): string {
  const fabric = stack.sites.facilities.find((f) => f.fabric?.hosts.some((h) => h.name === host))?.fabric;
  assert.ok(fabric, `host ${host} is on a fabric`);
  return prefixOn(mz, fabric.qualifier(host));
}

/** Where a node of `mz` is: its facility, its host (if its facility runs over hosts) and its namespace. */
export function placeOf(stack: MultiStack, mz: string, rz: Realization, node: string) {
  const emb = rz.nodes.find((n) => n.node === node);
  assert.ok(emb, `node ${node} is realized`);
  const f = stack.sites.facilities.find((x) => x.name === emb.facility);
  const host = f?.model.resources.find((r) => r.id === emb.resource)?.host;
  const prefix = host ? hostPrefix(stack, mz, host) : facilityPrefix(mz, emb.facility);
  return { node, facility: emb.facility, host, netns: `${prefix}-n-${node}` };
}

/** Every prefix `mz` has on the machine: per facility its own, and per host of it. */
function everyPlace(stack: MultiStack, mz: string): { where: string; prefix: string; dataDir: string }[] {
  return stack.sites.facilities.flatMap((f) => [
    { where: f.name, prefix: facilityPrefix(mz, f.name), dataDir: join(stack.tmp, "facilities", f.name, "backend") },
    ...(f.fabric?.hosts ?? []).map((h) => ({
      where: `${f.name}/${h.name}`,
      prefix: hostPrefix(stack, mz, h.name),
      dataDir: h.dataDir,
    })),
  ]);
}

/**
 * As `dematerializeClean`, on facilities that may run over several hosts: nothing of `mz` left on any
 * facility or host, no tunnel process, and each site holding only its own interfaces.
 */
export async function dematerializeEverywhere(stack: MultiStack, mz: string, timeout = 180): Promise<void> {
  const r = await stack.mrg(["dematerialize", mz, "--timeout", String(timeout)]);
  assert.equal(r.code, 0, r.stderr);
  const places = everyPlace(stack, mz);
  for (const p of places) {
    const left = await leftovers(p.prefix, p.dataDir);
    assert.ok(isClean(left), `${p.where} left ${JSON.stringify(left)}`);
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(p.prefix)),
      [],
      `no namespace of ${mz} on ${p.where}`,
    );
  }
  const wg = spawnSync("pgrep", ["-a", "wireguard-go"], { encoding: "utf8" }).stdout;
  for (const p of places) assert.ok(!wg.includes(p.prefix), wg);
  for (const f of stack.sites.facilities) {
    const links = spawnSync("ip", ["-n", f.site!.netns, "-o", "link", "show"], { encoding: "utf8" }).stdout;
    const names = [...links.matchAll(/^\d+: ([^:@]+)/gm)].map((m) => m[1]).sort();
    assert.deepEqual(names, ["lo", "wan0"], `site of ${f.name} holds only its own interfaces`);
  }
  assert.deepEqual(
    readdirSync("/var/run/wireguard").filter((s) => places.some((p) => s.startsWith(p.prefix))),
    [],
  );
}

/** An endpoint of an experiment's external link, materialized: where it is and its addresses. */
export interface ExternalEnd {
  node: string;
  facility: string;
  /** Its experiment address on the link (no prefix length). */
  address: string;
  /** Its infranet address. */
  infranet: string;
}

/**
 * `source` (an experiment with one external link) accepted as `experiment` in `project`, materialized
 * (waiting up to `timeout` seconds) and active: the realization, the status and the link's endpoints.
 */
export async function materializedAcross(
  stack: MultiStack,
  project: string,
  experiment: string,
  source: string,
  timeout = 300,
): Promise<{ mz: string; rz: Realization; st: MaterializationStatus; ends: ExternalEnd[] }> {
  await stack.accepted(project, experiment, JSON.stringify(await compiledHere(source)), "xir");
  const mz = `r1.${experiment}.${project}`;
  const rz = (await stack.admin.realization(project, experiment, "r1")).realization as Realization;
  const ext = rz.links.filter((l) => l.external);
  assert.equal(ext.length, 1, "one link crosses the wide area");
  const up = await stack.mrg(["materialize", mz, "--timeout", String(timeout)]);
  assert.equal(up.code, 0, up.stderr);
  const st = JSON.parse((await stack.mrg(["show", "materialization", mz, "--json"])).stdout) as MaterializationStatus;
  assert.equal(st.status, "active", JSON.stringify(st));
  const endpoints = ext[0]!.segments.flatMap((s) => s.endpoints);
  const ends = [...new Map(endpoints.map((e) => [e.node, e])).values()].map((e) => {
    const n = st.nodes.find((x) => x.node === e.node)!;
    return {
      node: e.node,
      facility: n.facility,
      address: (n.addresses?.[e.socket] ?? "").split("/")[0]!,
      infranet: n.infranet ?? "",
    };
  });
  return { mz, rz, st, ends };
}

/**
 * Until `a` (in its node's namespace) answers a ping to `b` across the wide area (20 s at most). Active means
 * every facility has its peers' gateway ends, but WireGuard's first handshake may still need its retry: an
 * initiation that reached the other gateway before that one had this one's key is dropped, and the next comes
 * 5 s later (REKEY_TIMEOUT). Measurements start once a packet has crossed.
 */
export function crossingAnswers(
  a: { netns: string; node: string; facility: string },
  b: { address: string; node: string; facility: string },
): void {
  const end = Date.now() + 20_000;
  while (!pings(a.netns, b.address, 1).length)
    if (Date.now() > end)
      throw new Error(
        `${a.node}@${a.facility} does not reach ${b.node}@${b.facility} (${b.address}) 20 s after active\n${gatewaysSeen()}`,
      );
}

/**
 * What the machine's infrapods and gateway namespaces hold, for a crossing that failed: their routes, and
 * the gateways' tunnels (public parts only: `wg show … dump` would print private keys) with their
 * handshakes and traffic.
 */
function gatewaysSeen(): string {
  const sh = (argv: string[]) =>
    (spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" }).stdout ?? "").trim().replaceAll("\t", " ");
  const routes = (ns: string) => `  routes: ${sh(["ip", "-n", ns, "route"]).replaceAll("\n", "; ")}`;
  const pods = listNetns()
    .filter((n) => n.endsWith("-i"))
    .map((ns) => `${ns} (infrapod):\n${routes(ns)}`);
  const gateways = listNetns()
    .filter((n) => n.endsWith("-g"))
    .map((ns) => {
      const wg = ["endpoints", "allowed-ips", "latest-handshakes", "transfer"].map(
        (what) => `  ${what}: ${sh(["ip", "netns", "exec", ns, "wg", "show", "all", what]).replaceAll("\n", "; ")}`,
      );
      return [`${ns}:`, ...wg, routes(ns)].join("\n");
    });
  return [...pods, ...gateways].join("\n");
}

export { fastest, pings };

/** LINE4 with each link asking 25 ms one way: 15 of them the wide area's, 10 added at the emulator. */
export const LINE4_25MS = LINE4.replace(
  "net.connect([n[i]!, n[i + 1]!]);",
  "net.connect([n[i]!, n[i + 1]!], latency.eq(ms(25)));",
).replace("import { addressing,", "import { latency, ms, addressing,");

/** The round trip across a LINE4_25MS link, from `a`'s namespace to `b`: 25 ms one way in all. */
export function assertAddedLatency(a: { netns: string }, b: { address: string }): void {
  const rtt = fastest(pings(a.netns, b.address, 10));
  assert.ok(rtt >= 50 && rtt < 65, `RTT ${rtt} ms across (25 ms one way asked; the wide area gives 15)`);
}
