// The wide-area facility's shared hosts take what their agents measure free:
// a real portal polls a real facility (commander, rex, host registry) of the
// wideArea sample, whose host agents run as processes (sim backend). site1's
// agent runs in a memory cgroup of 1 GiB (a small shared host); while another
// process there holds 700 MiB, a node asking 512 MiB is not placed on site1 and
// the refusal names the host and the measured figure; once that memory is freed
// the same realization goes through, with a node on site1.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { makeHostCert, SimBackend } from "@merge/facility";
import { wideArea } from "@merge/facility-model";
import { readFacilityHosts } from "@merge/portal";
import { type PortalStack, startPortalStack } from "./portal-stack.ts";

const DAEMON = fileURLToPath(new URL("../../facility/src/daemon.ts", import.meta.url));
const MiB = 2 ** 20;
const CGROUP_V1 = "/sys/fs/cgroup/memory";
const skip =
  process.getuid?.() !== 0 || !existsSync(`${CGROUP_V1}/cgroup.procs`) ? "needs root and cgroup v1 memory" : false;

const tmp = mkdtempSync(join(tmpdir(), "mrg-wide-measured-"));
const model = wideArea({ sites: 2 });
const cgroup = join(CGROUP_V1, `mrgwide${randomBytes(3).toString("hex")}`);
let stack: PortalStack;
const children: ChildProcess[] = [];

function agent(name: string): ChildProcess {
  const certs = join(tmp, `${name}-certs`);
  makeHostCert(join(tmp, "certs"), certs, name);
  const dataDir = join(tmp, name);
  mkdirSync(dataDir, { recursive: true });
  const registry = stack.facility.hostRegistryUrl as string;
  const args = ["--name", name, "--registry", registry, "--certs", certs, "--data-dir", dataDir];
  const c = spawn(
    process.execPath,
    ["--import", "tsx", DAEMON, "agent", ...args, "--underlay", "127.0.0.1", "--backend", "sim"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  children.push(c);
  return c;
}

/** A process in site1's cgroup holding `mib` MiB (written, so charged) until killed. */
function hog(mib: number): ChildProcess {
  const py = `import os,sys,time\nopen("${cgroup}/cgroup.procs","w").write(str(os.getpid()))\nb=b"\\x01"*(${mib}*2**20)\nprint("held",flush=True)\ntime.sleep(600)`;
  const c = spawn("python3", ["-c", py], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(c);
  return c;
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once("exit", r));
  c.kill("SIGKILL");
  await gone;
}

/** Until the portal's record of site1 satisfies `ok`; its free memory then. */
async function site1(ok: (free: number) => boolean, what: string): Promise<number> {
  const end = Date.now() + 30_000;
  let seen = -1;
  for (;;) {
    const f = (await readFacilityHosts(stack.portal.store)).find((x) => x.facility === model.name);
    const h = f?.hosts.find((x) => x.name === "site1");
    seen = h?.state === "up" && h.free ? h.free.memory : -1;
    if (seen >= 0 && ok(seen)) return seen;
    if (Date.now() > end) throw new Error(`the portal never saw site1 ${what} (last: ${seen} bytes free)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const source = `
import { Network, addressing, routing, memory, gb } from "@merge/model";
const net = new Network("pair", addressing.ipv4, routing.static);
const a = net.node("a", memory.eq(gb(0.5)));
const b = net.node("b", memory.eq(gb(0.5)));
net.connect([a, b]);
export default net;
`;

before(async () => {
  if (skip) return;
  stack = await startPortalStack(tmp, new SimBackend({ strict: false }), {
    model,
    hostPollMs: 150,
    facility: { hostLeaseTtl: 3, underlay: "127.0.0.1" },
  });
  for (const f of ["ca.pem", "portal.pem", "portal-key.pem"])
    cpSync(join(tmp, "certs", f), join(tmp, "creds", model.name, f));
  mkdirSync(cgroup);
  writeFileSync(join(cgroup, "memory.limit_in_bytes"), String(1024 * MiB));
  agent("site0");
  const a1 = agent("site1");
  // site1's agent is the small host: its measure is its cgroup's room.
  writeFileSync(join(cgroup, "cgroup.procs"), String(a1.pid));
  await stack.admin.createProject({ name: "wide" });
  await stack.admin.createExperiment("wide", { name: "pair" });
  const rev = await stack.admin.push("wide", "pair", source, "ts");
  assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
});

after(async () => {
  if (skip) return;
  for (const c of children) await stop(c);
  await stack?.close();
  if (existsSync(cgroup)) rmdirSync(cgroup);
  rmSync(tmp, { recursive: true, force: true });
});

test("a shared host takes a node only within the memory its agent measures free", { skip }, async () => {
  await site1((free) => free > 600 * MiB, "up with its cgroup's room free");
  const h = hog(700);
  await new Promise<void>((r) => h.stdout?.once("data", () => r()));
  const low = await site1((free) => free < 512 * MiB, "with less than 512 MiB free");
  const refused = await stack.admin.realize("wide", "pair", { name: "r0" });
  assert.equal(refused.state, "failed");
  // The figure is the agent's (it moves a little with each beat): below the 512 MiB asked.
  const said = refused.diagnostics
    .map((d) => /s1 on host site1 has ([\d.]+) MiB memory free, as its agent measured/.exec(d)?.[1])
    .find((x) => x !== undefined);
  assert.ok(said !== undefined, `the refusal names site1 and its measure: ${refused.diagnostics.join("\n")}`);
  assert.ok(Number(said) < 512 && Math.abs(Number(said) - low / MiB) < 64, `${said} MiB said, ${low / MiB} MiB seen`);
  // The memory is freed: the agent measures it, the facility answers it, the portal realizes onto site1.
  await stop(h);
  await site1((free) => free > 600 * MiB, "with its memory back");
  const placed = await stack.admin.realize("wide", "pair", { name: "r1" });
  assert.equal(placed.state, "pending", placed.diagnostics.join("\n"));
  assert.deepEqual(
    placed.resources.filter((r) => /\/s\d$/.test(r)).sort(),
    ["geni/s0", "geni/s1"],
    "one node on each shared host",
  );
});
