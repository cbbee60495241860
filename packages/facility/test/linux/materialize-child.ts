/**
 * Materializes an N-node LAN and then waits; the crash test SIGKILLs it
 * mid-materialization. argv: DATA_DIR MZID NODES
 */
import { LinuxDataPlane } from "../../src/linux/dataplane.ts";
import { experiment, link, localPlan, node } from "./fixture.ts";

const [dataDir, mzid, count] = process.argv.slice(2) as [string, string, string];
const names = Array.from({ length: Number(count) }, (_, i) => `n${i}`);
const xp = experiment(
  "crash",
  names.map((n, i) => node(n, [[`10.9.${i >> 8}.${(i & 255) + 1}/16`]])),
  [
    link(
      "lan",
      names.map((n) => [n, 0] as [string, number]),
      [{ prop: "latency", op: "==", value: 1e6 }],
    ),
  ],
);
const dp = await LinuxDataPlane.open({ dataDir, defaultImage: "busybox" });
process.stdout.write("open\n");
await dp.materialize(localPlan(xp, mzid));
process.stdout.write("done\n");
setInterval(() => {}, 1000);
