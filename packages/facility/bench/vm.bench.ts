/**
 * VM nodes on the linux data plane, for real (root, qemu-system-x86, Debian's
 * kernel): `boot-1` and `boot-10` time a materialization of N VM nodes on one
 * LAN until every VM is configured and answers on the infranet (`accel` says
 * KVM or TCG); `mem-per-vm` is the resident memory of an idle VM's QEMU
 * process (MB, mean over 3). `dilation` materializes one VM asking
 * `clock.dilation == 10` (boot plus calibration: `ready_ms`), then measures
 * its guest clock against the host's twice over 20 s, idle and under a busy
 * loop in the guest (a different instruction mix than the polling idle loop
 * it was calibrated on): `asked`, `achieved` (the calibration's),
 * `achieved_idle`, `achieved_busy` (host s per guest s against wall time),
 * `of_cpu` (against the CPU time the host gave QEMU, per core of the cap the
 * governor had settled on idle; `of_cpu_busy` uses the same cap, which the
 * governor lowers under the busy loop, so it reads low by that factor),
 * `obtained` (the share of its cap the host gave it while measured).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench, peakMb } from "@merge/bench";
import type { Experiment } from "@merge/xir";
import { LinuxDataPlane } from "../src/linux/dataplane.ts";
import { cpuSeconds } from "../src/linux/dilation.ts";
import { prefixOf } from "../src/linux/names.ts";
import { sweep } from "../src/linux/sweep.ts";
import { accel, vmPid, vmProfileOf, vmRun } from "../src/linux/vm.ts";
import { localPlan } from "../test/linux/fixture.ts";

function vmLan(n: number): Experiment {
  const nodes = Array.from({ length: n }, (_, i) => ({
    name: `v${i}`,
    constraints: [
      { prop: "virt.kind", op: "==" as const, value: "vm" },
      { prop: "proc.cores", op: "==" as const, value: 1 },
      { prop: "memory.capacity", op: "==" as const, value: 256 * 2 ** 20 },
    ],
    properties: {},
    sockets: [{ index: 0, addrs: [`10.0.0.${i + 1}/24`], constraints: [] }],
  }));
  const links =
    n > 1
      ? [
          {
            name: "lan",
            endpoints: nodes.map((x) => ({ node: x.name, socket: 0 })),
            constraints: [],
            properties: {},
          },
        ]
      : [];
  return { xir: "1.0", name: `vms${n}`, parameters: {}, nodes, links };
}

function bootCase(n: number) {
  return benchCase(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "mrg-bench-vm-"));
    const dp = await LinuxDataPlane.open({ dataDir });
    const mzid = `vm${n}.b${randomBytes(3).toString("hex")}.bench`;
    const xp = vmLan(n);
    const fragments = localPlan(xp, mzid);
    const cleanup = async () => {
      await sweep(prefixOf(mzid), dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    };
    for (const sig of ["SIGINT", "SIGTERM"] as const)
      process.once(sig, () => void cleanup().finally(() => process.exit(130)));
    return {
      run: () => dp.materialize(fragments, { vmTimeoutMs: 30 * 60_000 }),
      fields: () => {
        // Resident memory of each QEMU process, once booted.
        const rss = xp.nodes.map((x) => {
          const pid = vmPid(dp.env, prefixOf(mzid), x.name);
          const m = pid ? /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8")) : null;
          return m ? Number(m[1]) / 1024 : 0;
        });
        return {
          vms: n,
          accel: accel(),
          vm_rss_mb: Math.round(rss.reduce((a, b) => a + b, 0) / rss.length),
          peak_mb: peakMb(),
        };
      },
      cleanup,
    };
  });
}

/** Guest seconds, wall seconds and QEMU CPU seconds over `ms` of a VM, with `busy` running in the guest meanwhile. */
async function clockSpan(dp: LinuxDataPlane, prefix: string, node: string, ms: number, busy: boolean) {
  const pid = vmPid(dp.env, prefix, node)!;
  const read = async () => {
    const c0 = cpuSeconds(pid);
    const t0 = Date.now();
    const r = await vmRun(dp.env, prefix, node, "cat /proc/uptime");
    return {
      guest: Number(r.output.toString().split(" ")[0]),
      wall: (t0 + Date.now()) / 2000,
      cpu: (c0 + cpuSeconds(pid)) / 2,
    };
  };
  // The loop runs in the background of the guest while the host waits; the agent answers beside it.
  if (busy)
    await vmRun(dp.env, prefix, node, "(i=0; while :; do i=$((i+1)); done) >/dev/null 2>&1 & echo $! > /tmp/busy");
  const a = await read();
  await new Promise((r) => setTimeout(r, ms));
  const b = await read();
  if (busy) await vmRun(dp.env, prefix, node, "kill $(cat /tmp/busy)");
  return { guest: b.guest - a.guest, wall: b.wall - a.wall, cpu: b.cpu - a.cpu };
}

const dilationCase = benchCase(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "mrg-bench-vm-"));
  const dp = await LinuxDataPlane.open({ dataDir });
  const mzid = `dil.b${randomBytes(3).toString("hex")}.bench`;
  const prefix = prefixOf(mzid);
  const xp = vmLan(1);
  xp.nodes[0]!.constraints.push({ prop: "clock.dilation", op: "==", value: 10 });
  const fragments = localPlan(xp, mzid);
  const cleanup = async () => {
    await sweep(prefix, dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  return {
    run: async () => {
      const t0 = Date.now();
      await dp.materialize(fragments, { vmTimeoutMs: 30 * 60_000 });
      const readyMs = Date.now() - t0;
      const idle = await clockSpan(dp, prefix, "v0", 20_000, false);
      const busy = await clockSpan(dp, prefix, "v0", 20_000, true);
      return { readyMs, idle, busy, profile: vmProfileOf(dp.env, prefix, "v0") };
    },
    fields: ({ readyMs, idle, busy, profile }) => {
      const d = profile?.dilation;
      const r2 = (x: number) => Math.round(x * 100) / 100;
      return {
        accel: profile?.accel ?? "",
        ready_ms: readyMs,
        asked: d?.asked ?? 0,
        achieved: r2(d?.achieved ?? 0),
        achieved_idle: r2(idle.wall / idle.guest),
        achieved_busy: r2(busy.wall / busy.guest),
        of_cpu: r2(d ? idle.cpu / d.cap / idle.guest : 0),
        of_cpu_busy: r2(d ? busy.cpu / d.cap / busy.guest : 0),
        obtained: r2(d ? idle.cpu / idle.wall / d.cap : 0),
        shift: d?.shift ?? -1,
        cap: r2(d?.cap ?? 0),
        peak_mb: peakMb(),
      };
    },
    cleanup,
  };
});

export default defineBench({
  name: "vm",
  cases: {
    "boot-1": bootCase(1),
    "boot-10": bootCase(10),
    "mem-per-vm": bootCase(3),
    dilation: dilationCase,
  },
});
