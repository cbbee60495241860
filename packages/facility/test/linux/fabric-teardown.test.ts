// The fabric's close() (what `npm start -- --hosts N` stops with) removes everything a host's
// agent made, even of a materialization it has no state or directory of (an agent killed
// mid-setup): the agent journals each prefix before first use, and close() sweeps by it; any
// process running from the fabric's directory and any mount under it go too.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openFabric } from "../../src/linux/fabric.ts";
import { prefixOf, prefixOn, qualifyNames } from "../../src/linux/names.ts";
import { alive, listNetns } from "../../src/linux/processes.ts";
import { journalPrefix, prefixesOwned } from "../../src/linux/state.ts";
import { skip } from "./fixture.ts";

function sh(cmd: string[]): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8" });
  assert.equal(r.status, 0, `${cmd.join(" ")}: ${r.stderr}`);
}

test("close() removes what a host's agent made of a materialization with no state: namespaces, VXLAN device, processes, mounts", {
  skip,
}, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-ft-"));
  const f = await openFabric({ dir: join(tmp, "hosts"), hosts: ["h1"] });
  const h1 = f.host("h1");
  const mzid = `lost.${f.run}.test`;
  let sleeper: number | undefined;
  try {
    // As the agent does (host/run.ts): its prefixes journaled before first use.
    qualifyNames(f.qualifier("h1"), (p) => journalPrefix(h1.dataDir, p));
    const prefix = prefixOf(mzid);
    qualifyNames("");
    assert.equal(prefix, prefixOn(mzid, f.qualifier("h1")));
    // Objects of it made before any state or directory of it: a node namespace holding a VXLAN
    // device, a process in it started from the host's data directory, a mount under it.
    const ns = `${prefix}-n-a`;
    sh(["ip", "netns", "add", ns]);
    sh(["ip", "-n", h1.netns, "link", "add", `${prefix}v`, "type", "vxlan", "id", "4242", "dstport", "4789"]);
    sh(["ip", "-n", h1.netns, "link", "set", `${prefix}v`, "netns", ns]);
    const bin = join(h1.dataDir, "bin");
    mkdirSync(bin, { recursive: true });
    sh(["cp", "/bin/sleep", join(bin, "sleep")]);
    const p = spawn("ip", ["netns", "exec", ns, join(bin, "sleep"), "1000"], { stdio: "ignore", detached: true });
    p.unref();
    await new Promise((r) => setTimeout(r, 300));
    sleeper = p.pid;
    const mnt = join(h1.dataDir, "scratch");
    mkdirSync(mnt);
    sh(["mount", "-t", "tmpfs", `${f.run}-t`, mnt]);
    assert.deepEqual(prefixesOwned(h1.dataDir), [], "no directory or state of it");
    await f.close();
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith(prefix) || n.startsWith(f.run)),
      [],
    );
    assert.ok(!sleeper || !alive(sleeper), "the process is gone");
    assert.ok(!readFileSync("/proc/mounts", "utf8").includes(tmp), "nothing is mounted under the fabric's directory");
    const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
    assert.ok(!links.includes(f.run) && !links.includes(prefix), "no interface of the run");
  } finally {
    if (sleeper && alive(sleeper)) process.kill(sleeper, "SIGKILL");
    await f.close().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("two fabrics with the same host names give one mzid different prefixes on their hosts (names qualified by run)", {
  skip,
}, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-ft-"));
  const fs = [
    await openFabric({ dir: join(tmp, "a"), hosts: ["h1"] }),
    await openFabric({ dir: join(tmp, "b"), hosts: ["h1"] }),
  ];
  try {
    const [a, b] = fs.map((f) => f.qualifier("h1")) as [string, string];
    assert.notEqual(a, b);
    assert.notEqual(prefixOn("x.y.z", a), prefixOn("x.y.z", b));
    // What the agent of each would use: its process qualifies with the fabric's qualifier (host/run.ts).
    qualifyNames(a);
    const pa = prefixOf("x.y.z");
    qualifyNames(b);
    const pb = prefixOf("x.y.z");
    qualifyNames("");
    assert.notEqual(pa, pb);
  } finally {
    for (const f of fs) await f.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
