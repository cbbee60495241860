// npm run bench -- cli
//   version   `mrg --version` as a user runs it (packages/cli/bin/mrg, the built
//             JavaScript): median wall time of 10 runs, with a bare `node -e 0`
//             measured beside it (node_ms) since a shared machine slows both;
//             cpu_ms / node_cpu_ms: the CPU time one run takes (mean), which
//             other processes' turns on a loaded machine do not inflate.
// (emu-set, from command start until ping sees the new latency, is not here yet.)
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { benchCase, defineBench } from "@merge/bench";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const MRG = `${root}packages/cli/bin/mrg`;

/** CPU time (ms) of this process's waited-for children so far: utime + stime of /proc/self/stat, in clock ticks. */
function childrenCpuMs(): number {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]?.split(" ") ?? [];
  // After "pid (comm) ": state is field 3, cutime and cstime are fields 16 and 17.
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** Median wall time (ms) of `runs` runs of a command that must succeed, and its mean CPU time. */
function measure(cmd: string, args: string[], runs: number): { ms: number; cpu: number } {
  const cpu0 = childrenCpuMs();
  const ms = medianMs(cmd, args, runs);
  return { ms, cpu: Math.round((childrenCpuMs() - cpu0) / runs) };
}

/** Median wall time (ms) of `runs` runs of a command that must succeed. */
function medianMs(cmd: string, args: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
    if (r.stderr.includes("not built")) throw new Error(`${cmd}: not built; run npm run build`);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(runs / 2)] ?? 0);
}

export default defineBench({
  name: "cli",
  cases: {
    version: benchCase(() => {
      // The build the user runs (npm run build; scripts/setup.sh and npm test do it).
      const build = spawnSync(process.execPath, [`${root}packages/cli/build.mjs`], { encoding: "utf8" });
      if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);
      medianMs(MRG, ["--version"], 2); // the page cache, as for a command run a second time
      return {
        run: () => ({ mrg: measure(MRG, ["--version"], 10), node: measure(process.execPath, ["-e", "0"], 10) }),
        // ms is the median of one run, not the time of all twenty.
        fields: (r) => ({ ms: r.mrg.ms, cpu_ms: r.mrg.cpu, node_ms: r.node.ms, node_cpu_ms: r.node.cpu, runs: 10 }),
        targets: { max: { ms: 150 } },
      };
    }),
  },
});
