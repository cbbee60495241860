/**
 * The performance profile a virtual node gets from its model: `cpu.share` as
 * a cgroup CPU quota (a VM's QEMU process and a container), `clock.dilation`
 * as QEMU's instruction counting plus a governed quota, refused with the
 * achievable range when the host cannot give it. TCG here; the dilation is
 * measured on a loaded 2-core host, so its checks allow for the host not
 * giving the guest its whole cap (`obtained`).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { Constraint } from "@merge/xir";
import {
  CAP_MAX,
  CAP_MIN,
  dilationCap,
  dilationRange,
  dilationRefusal,
  dilationShift,
  governorStart,
  governStep,
  span,
} from "../../src/linux/dilation.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { vmGoverned, vmPid, vmProfileOf, vmRun, vmUngovern } from "../../src/linux/vm.ts";
import {
  experiment,
  type Harness,
  isClean,
  leftovers,
  link,
  localPlan,
  node,
  qemuSkip,
  suiteHarness,
} from "./fixture.ts";

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

describe("the dilation governor", () => {
  /** A simulated QEMU: the host gives it min(cap, available) cores; the guest runs `rate` guest s per CPU s. */
  function simulate(steps: { rate: number; available: number; seconds: number }[], guessRate: number) {
    let r = { guest: 0, wall: 0, cpu: 0, rt: 1 };
    let g = governorStart(r, guessRate, 0.25);
    const out: { wall: number; guest: number }[] = [];
    for (const s of steps) {
      for (let t = 0; t < s.seconds; t += 0.5) {
        const cpu = Math.min(g.cap, s.available) * 0.5;
        r = { guest: r.guest + s.rate * cpu, wall: r.wall + 0.5, cpu: r.cpu + cpu, rt: 1 };
        g = governStep(g, r, 10);
      }
      out.push({ wall: r.wall, guest: r.guest });
    }
    return out;
  }
  const ratio = (a: { wall: number; guest: number }, b: { wall: number; guest: number }) =>
    (b.wall - a.wall) / (b.guest - a.guest);

  test("holds 10× from a wrong first guess, and again when the guest's instruction mix makes it 11× faster", () => {
    // Idle (0.5 guest s per CPU s), then busy (5.5): 20 s each to settle, 20 s each measured.
    const [a, b, c, d] = simulate(
      [
        { rate: 0.5, available: 1, seconds: 20 },
        { rate: 0.5, available: 1, seconds: 20 },
        { rate: 5.5, available: 1, seconds: 20 },
        { rate: 5.5, available: 1, seconds: 20 },
      ],
      0.05,
    );
    assert.ok(Math.abs(ratio(a!, b!) / 10 - 1) < 0.03, `idle: ${ratio(a!, b!)}`);
    assert.ok(Math.abs(ratio(c!, d!) / 10 - 1) < 0.03, `busy: ${ratio(c!, d!)}`);
  });

  test("a host short of CPU leaves the guest behind; the backlog it catches up afterwards is bounded", () => {
    // The cap needed is 0.2 core; the host gives 0.1 for 60 s, then all it asks.
    const [a, b, c] = simulate(
      [
        { rate: 0.5, available: 1, seconds: 10 },
        { rate: 0.5, available: 0.1, seconds: 60 },
        { rate: 0.5, available: 1, seconds: 20 },
      ],
      0.5,
    );
    assert.ok(Math.abs(ratio(a!, b!) / 20 - 1) < 0.05, `starved: ${ratio(a!, b!)}× (half the CPU it needs)`);
    // Catching up: 20 s of host time bring at most 2 s (its share) + 0.5 s (the 5 s backlog) of guest time.
    assert.ok(c!.guest - b!.guest <= 2.5 + 0.01, `caught up ${c!.guest - b!.guest} guest s`);
  });
});

/** The CPU quota of a node's cgroup, in cores (v1 or v2). */
function quota(h: Harness, prefix: string, name: string): number {
  const cg = h.dp.capabilities.cgroup;
  const dir = `${cg.cpu}/${prefix}-${name}`;
  if (cg.version === 1) return Number(readFileSync(`${dir}/cpu.cfs_quota_us`, "utf8")) / 100_000;
  return Number(readFileSync(`${dir}/cpu.max`, "utf8").split(" ")[0]) / 100_000;
}

describe("linux data plane: VM and container profiles", { skip: qemuSkip(), timeout: 1_500_000 }, () => {
  const h = suiteHarness();

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
    // The governor holds the guest's clock at a tenth of the host's: never faster than asked (20%
    // tolerance), slower only as far as the loaded host did not give QEMU its cap (`obtained`).
    assert.ok(d.achieved > 8, `achieved ${d.achieved}`);
    assert.ok(d.achieved < 12.5 / Math.min(1, d.obtained), `achieved ${d.achieved}, obtained ${d.obtained}`);
    // Measured again, independently, from the guest's own clock (/proc/uptime through the agent), with a
    // busy loop in the guest (ten times the instructions per CPU second of its idle loop): the governor
    // lowers the cap and the guest second still takes several host seconds.
    await vmRun(h.dp.env, prefix, "v", "(while :; do :; done) >/dev/null 2>&1 & echo $! > /tmp/busy");
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

    // A facility restart: the governor lived in the old process and ends with it; the VM keeps its
    // last quota, the busy loop's. The loop ends (at that quota the idle guest's clock would run about
    // ten times too slow); the restarted backend adopts the plan and governs the clock again.
    vmUngovern(h.dp.env, prefix, "v");
    await vmRun(h.dp.env, prefix, "v", "kill $(cat /tmp/busy)");
    h.dp.adopt(h.dp.plan(mzid));
    for (let i = 0; i < 50 && !vmGoverned(h.dp.env, prefix, "v"); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(vmGoverned(h.dp.env, prefix, "v"), "governed again after the restart");
    await new Promise((r) => setTimeout(r, 8_000));
    const c0 = await up();
    await new Promise((r) => setTimeout(r, 10_000));
    const c1 = await up();
    const again = (c1.wall - c0.wall) / (c1.guest - c0.guest);
    console.log(`after the restart, idle: ${again.toFixed(1)}×`);
    assert.ok(again > 6 && again < 30, `after the restart the guest clock ran at 1/${again.toFixed(1)} of the host's`);
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
