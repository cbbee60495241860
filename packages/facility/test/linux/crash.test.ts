import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { prefixOf } from "../../src/linux/names.ts";
import { alive } from "../../src/linux/processes.ts";
import { sweep } from "../../src/linux/sweep.ts";
import { isClean, leftovers, skip, suiteHarness } from "./fixture.ts";

const child = fileURLToPath(new URL("./materialize-child.ts", import.meta.url));

describe("linux data plane: crash mid-materialization", { skip }, () => {
  const h = suiteHarness();

  test("SIGKILL a process materializing 60 nodes, then sweep: nothing is left", async () => {
    const mzid = h.mzid("crash");
    const prefix = prefixOf(mzid);
    const p = spawn(process.execPath, ["--import", "tsx", child, h.dataDir, mzid, "60"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    // Kill it once namespaces and processes of the materialization exist, before it is done.
    const end = Date.now() + 60_000;
    let seen = await leftovers(prefix, h.dataDir);
    const daemons = (l: typeof seen) =>
      l.processes.filter((x) => x.comm !== "ip" && x.comm !== "tc" && x.comm !== "nsenter");
    while (!(seen.netns.length > 5 && daemons(seen).length > 0) && Date.now() < end && !out.includes("done")) {
      await new Promise((r) => setTimeout(r, 10));
      seen = await leftovers(prefix, h.dataDir);
    }
    p.kill("SIGKILL");
    await new Promise((r) => p.once("close", r));
    assert.ok(!out.includes("done"), "killed before it finished");
    const before = await leftovers(prefix, h.dataDir);
    assert.ok(
      before.netns.length > 0 && daemons(before).length > 0,
      `it left things behind: ${JSON.stringify({ ...before, netns: before.netns.length, seen: seen.processes })}`,
    );
    const after = await sweep(prefix, h.dataDir);
    assert.ok(isClean(after), JSON.stringify(after));
    // Independently of leftovers(): no namespace, interface, mount or process carries the prefix.
    const { spawnSync } = await import("node:child_process");
    assert.doesNotMatch(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout, new RegExp(prefix));
    assert.doesNotMatch(spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout, new RegExp(prefix));
    assert.doesNotMatch(readFileSync("/proc/mounts", "utf8"), new RegExp(prefix));
    const ps = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" }).stdout;
    assert.doesNotMatch(ps, new RegExp(`${prefix}|${h.dataDir}/mz`));
    for (const x of before.processes) assert.ok(!alive(x.pid), `${x.comm} (${x.pid}) still runs`);
  });
});
