// The default node image: Debian bookworm (scripts/setup.sh builds it into the
// image cache; nothing is downloaded at test time, so without it this skips).
// Nodes that name no image boot it, with the tools experimenters reach for,
// reached through the node exec path; and every node, on any image, has a
// default route to the infrapod over the infranet.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { INFRANET } from "@merge/materialize";
import { LinuxDataPlane } from "../../src/linux/dataplane.ts";
import { DEFAULT_IMAGE, imageCache, removeStaleBuilds } from "../../src/linux/image.ts";
import { type Harness, harness, line3, localPlan, skip } from "./fixture.ts";

const built = existsSync(join(imageCache(), DEFAULT_IMAGE, "etc/mrg/boot"));
const reason = skip || (built ? false : `${DEFAULT_IMAGE} is not built in ${imageCache()}: scripts/setup.sh builds it`);

describe("the default node image (Debian)", { skip: reason }, () => {
  let h: Harness;
  let dp: LinuxDataPlane;
  before(async () => {
    h = await harness();
    // No defaultImage: what a facility gets.
    dp = await LinuxDataPlane.open({ dataDir: h.dataDir, log: () => {} });
  });
  after(async () => {
    await h?.close();
  });

  test("a node that names no image runs Debian: iperf3, python3, ping; default route to the infrapod", async () => {
    const mzid = h.mzid("debian");
    await dp.materialize(localPlan(line3(), mzid));
    try {
      const iperf = await dp.run(mzid, "a", ["iperf3", "--version"]);
      assert.equal(iperf.code, 0, iperf.stderr);
      assert.match(iperf.stdout, /^iperf 3\./);
      const py = await dp.run(mzid, "a", ["python3", "-c", "1"]);
      assert.equal(py.code, 0, py.stderr);
      const os = await dp.run(mzid, "a", ["cat", "/etc/debian_version"]);
      assert.match(os.stdout, /^12\./);
      for (const tool of ["tcpdump", "curl", "sshd", "ip"]) {
        const w = await dp.run(mzid, "a", ["sh", "-c", `command -v ${tool} || ls /usr/sbin/${tool}`]);
        assert.equal(w.code, 0, `${tool} is in the image`);
      }
      // Debian's ping across the routed path a - b - c.
      const ping = await dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "10.0.1.2"]);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      const route = await dp.run(mzid, "c", ["ip", "route", "show", "default"]);
      assert.match(route.stdout, new RegExp(`^default via ${INFRANET.gateway.replace(/\./g, "\\.")} dev eth0`));
    } finally {
      await dp.dematerialize(mzid);
    }
  });
});

// A build killed mid-debootstrap leaves its directory with /proc mounted inside; the
// next build must unmount and remove it, and leave a build still running alone.
describe("stale Debian builds", { skip: skip || (process.getuid?.() !== 0 && "needs root to mount") }, () => {
  test("a dead builder's directory goes with its mounts; a live builder's stays", () => {
    const cache = mkdtempSync(join(tmpdir(), "mrg-image-cache-"));
    const deadPid = spawnSync("true").pid;
    const live = spawn("sleep", ["60"]);
    const dead = join(cache, `bookworm.${deadPid}.tmp`);
    const running = join(cache, `bookworm.${live.pid}.tmp`);
    mkdirSync(join(dead, "proc"), { recursive: true });
    mkdirSync(running);
    mkdirSync(join(cache, "trixie.1.tmp"));
    execFileSync("mount", ["-t", "proc", "proc", join(dead, "proc")]);
    try {
      assert.deepEqual(removeStaleBuilds(cache, "bookworm"), [`bookworm.${deadPid}.tmp`]);
      assert.deepEqual(readdirSync(cache).sort(), [`bookworm.${live.pid}.tmp`, "trixie.1.tmp"]);
    } finally {
      live.kill();
      spawnSync("umount", ["-l", join(dead, "proc")]);
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
