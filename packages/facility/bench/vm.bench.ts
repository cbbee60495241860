/**
 * VM nodes on the linux data plane, for real (root, qemu-system-x86, Debian's
 * kernel): `boot-1` and `boot-10` time a materialization of N VM nodes on one
 * LAN until every VM is configured and answers on the infranet (`accel` says
 * KVM or TCG); `mem-per-vm` is the resident memory of an idle VM's QEMU
 * process (MB, mean over 3).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench, peakMb } from "@merge/bench";
import type { Experiment } from "@merge/xir";
import { LinuxDataPlane } from "../src/linux/dataplane.ts";
import { prefixOf } from "../src/linux/names.ts";
import { sweep } from "../src/linux/sweep.ts";
import { accel, vmPid } from "../src/linux/vm.ts";
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

export default defineBench({
  name: "vm",
  cases: {
    "boot-1": bootCase(1),
    "boot-10": bootCase(10),
    "mem-per-vm": bootCase(3),
  },
});
