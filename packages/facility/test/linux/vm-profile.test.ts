/**
 * The performance profile a virtual node gets from its model: `cpu.share` as
 * a cgroup CPU quota (a VM's QEMU process and a container), `clock.dilation`
 * as QEMU's instruction counting plus a calibrated quota, refused with the
 * achievable range when the host cannot give it. TCG here; the dilation is
 * measured on a loaded 2-core host, so its checks allow for the host not
 * giving the guest its whole cap (`obtained`).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Constraint } from "@merge/xir";
import {
  CAP_MAX,
  CAP_MIN,
  dilationCap,
  dilationRange,
  dilationRefusal,
  dilationShift,
  span,
} from "../../src/linux/dilation.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { vmPid, vmProfileOf, vmRun } from "../../src/linux/vm.ts";
import { guestKernel } from "../../src/linux/vm-image.ts";
import { experiment, type Harness, harness, isClean, leftovers, link, localPlan, node, skip } from "./fixture.ts";

const c = (prop: string, value: Constraint["value"]): Constraint => ({ prop, op: "==", value });

describe("dilation arithmetic", () => {
  test("the range, the shift and the cap follow from the rate; a request outside the range names it", () => {
    // 0.03 guest s per host CPU s at shift 0: 1/(0.03 × 1024) to 1/(0.03 × 0.01).
    const r = dilationRange(0.03);
    assert.ok(Math.abs(r.min - 0.0326) < 0.001 && Math.abs(r.max - 3333.3) < 0.1, JSON.stringify(r));
    // 10× at 0.03: the cap at shift 4 is 1/(10 × 0.48) ≈ 0.21, nearest the 0.25 aimed at.
    assert.equal(dilationShift(10, 0.03), 4);
    assert.ok(Math.abs(dilationCap(10, 0.03 * 16)! - 0.208) < 0.001);
    assert.equal(dilationCap(10, 0.001), undefined, "would need 100 cores");
    assert.equal(dilationCap(10, 100), undefined, "would need a quota under 1 ms per period");
    assert.ok(CAP_MIN < CAP_MAX);
    assert.equal(dilationRefusal(10, 0.03), undefined);
    assert.match(dilationRefusal(500, 1)!, /clock\.dilation == 500 cannot be met here: .* from 0\.00098 to 100 are/);
    // The error bound is the round trips against the span.
    assert.deepEqual(span({ guest: 1, wall: 100, cpu: 5, rt: 400 }, { guest: 2, wall: 110, cpu: 7, rt: 600 }), {
      guest: 1,
      wall: 10,
      cpu: 2,
      error: 0.05,
    });
  });
});

function qemuSkip(): string | false {
  if (skip) return skip;
  if (!existsSync("/usr/bin/qemu-system-x86_64")) return "VM tests need qemu-system-x86 (scripts/setup.sh installs it)";
  try {
    guestKernel();
  } catch (e) {
    return (e as Error).message;
  }
  return false;
}

/** The CPU quota of a node's cgroup, in cores (v1 or v2). */
function quota(h: Harness, prefix: string, name: string): number {
  const cg = h.dp.capabilities.cgroup;
  const dir = `${cg.cpu}/${prefix}-${name}`;
  if (cg.version === 1) return Number(readFileSync(`${dir}/cpu.cfs_quota_us`, "utf8")) / 100_000;
  return Number(readFileSync(`${dir}/cpu.max`, "utf8").split(" ")[0]) / 100_000;
}

describe("linux data plane: VM and container profiles", { skip: qemuSkip(), timeout: 1_500_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => {
    await h?.close();
  });

  test("cpu.share: a VM of 2 cores at 0.25 gets half a core once booted, a container of 1 core at 0.3 gets 0.3", async (t) => {
    if (!h.dp.capabilities.cgroup.cpu) return t.skip("no cgroup cpu controller");
    const mzid = h.mzid("share");
    const v = node("v", [["10.0.0.1/24"]]);
    v.constraints.push(c("virt.kind", "vm"), c("proc.cores", 2), c("cpu.share", 0.25));
    const ct = node("ct", [["10.0.0.2/24"]]);
    ct.constraints.push(c("proc.cores", 1), c("cpu.share", 0.3));
    const fragments = localPlan(
      experiment(
        "share",
        [v, ct],
        [
          link(
            "l",
            [
              ["v", 0],
              ["ct", 0],
            ],
            [],
          ),
        ],
      ),
      mzid,
    );
    await h.dp.materialize(fragments);
    const prefix = prefixOf(mzid);
    assert.equal(quota(h, prefix, "v"), 0.5);
    assert.equal(vmProfileOf(h.dp.env, prefix, "v")?.cpuCap, 0.5);
    assert.equal(quota(h, prefix, "ct"), 0.3);
    assert.equal((await h.dp.run(mzid, "v", ["ping", "-c", "1", "-W", "5", "10.0.0.2"])).code, 0);
    await h.dp.dematerialize(mzid);
    assert.ok(isClean(await leftovers(prefix, h.dataDir)));
  });

  test("clock.dilation == 10: the guest's clock runs about 10× slower than the host's, as calibrated and recorded", async () => {
    const mzid = h.mzid("dil");
    const v = node("v", []);
    v.constraints.push(c("virt.kind", "vm"), c("proc.cores", 1), c("clock.dilation", 10));
    await h.dp.materialize(localPlan(experiment("dil", [v], []), mzid), { vmTimeoutMs: 20 * 60_000 });
    const prefix = prefixOf(mzid);
    const p = vmProfileOf(h.dp.env, prefix, "v");
    assert.ok(p?.dilation, "the profile records the dilation");
    assert.equal(p.accel, "tcg");
    assert.equal(p.cpuCap, p.dilation.cap);
    const d = p.dilation;
    console.log(`dilation profile: ${JSON.stringify(d)}`);
    // Against the CPU the host gave it, the calibration holds within 20% (plus the reading's error)...
    assert.ok(Math.abs(d.ofCpu / 10 - 1) < 0.2 + d.error, `ofCpu ${d.ofCpu}`);
    // ...and the wall clock's ratio is what the host's load allowed: never faster than asked (beyond error).
    assert.ok(d.achieved > 10 * (0.8 - d.error), `achieved ${d.achieved}`);
    // Measured again, independently, from the guest's clock: a guest second takes several host seconds.
    const up = async () => {
      const t0 = Date.now();
      const r = await vmRun(h.dp.env, prefix, "v", "cat /proc/uptime");
      return { guest: Number(r.output.toString().split(" ")[0]), wall: (t0 + Date.now()) / 2000 };
    };
    const a = await up();
    await new Promise((r) => setTimeout(r, 10_000));
    const b = await up();
    const ratio = (b.wall - a.wall) / (b.guest - a.guest);
    console.log(
      `independent: ${(b.wall - a.wall).toFixed(1)} s host, ${(b.guest - a.guest).toFixed(2)} s guest: ${ratio.toFixed(1)}×`,
    );
    assert.ok(ratio > 6, `the guest clock ran at 1/${ratio.toFixed(1)} of the host's`);
    assert.ok(vmPid(h.dp.env, prefix, "v"));
    await h.dp.dematerialize(mzid);
    assert.ok(isClean(await leftovers(prefix, h.dataDir)));
  });

  test("a dilation the host cannot give is refused before booting, naming the achievable range", async () => {
    const mzid = h.mzid("far");
    const file = join(h.dataDir, "vm-icount.json");
    const saved = existsSync(file) ? readFileSync(file, "utf8") : undefined;
    // A host 33× faster than this one: 1 guest s per CPU s at shift 0 gives at most 100×.
    writeFileSync(file, JSON.stringify({ rate0: 1 }));
    try {
      const v = node("v", []);
      v.constraints.push(c("virt.kind", "vm"), c("clock.dilation", 1000));
      await assert.rejects(
        h.dp.materialize(localPlan(experiment("far", [v], []), mzid)),
        /VM v: clock\.dilation == 1000 cannot be met here: .* dilations from 0\.00098 to 100 are achievable/,
      );
      assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)));
    } finally {
      if (saved === undefined) rmSync(file, { force: true });
      else writeFileSync(file, saved);
    }
  });
});
