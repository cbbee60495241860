// npm run bench -- cli
//   version   `mrg --version` as a user runs it (packages/cli/bin/mrg, the built
//             JavaScript): median wall time of 10 runs, with a bare `node -e 0`
//             measured beside it (node_ms) since a shared machine slows both;
//             cpu_ms / node_cpu_ms: the CPU time one run takes (mean), which
//             other processes' turns on a loaded machine do not inflate.
//   emu-set   `mrg emu set ab … --latency 60ms` (then 10ms, then 60ms) on a
//             materialized two-node pair (linux backend, root): ms from the
//             command's start until a ping from a to b, running in a loop
//             through `mrg exec`, answers with the new round trip; the median
//             of the three. Needs root and network namespaces.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchCase, defineBench } from "@merge/bench";
import { LINUX_PAIR, startPortalStack } from "@merge/e2e/portal-stack";
import { isClean, LinuxBackend, prefixOf, sweep } from "@merge/facility/linux";
import { skip } from "@merge/facility/testing/linux";

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

/** The CLI as a user runs it (built JavaScript). */
function build(): void {
  const r = spawnSync(process.execPath, [`${root}packages/cli/build.mjs`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
}

/**
 * Round-trip times as a pinger reports them, each with when it arrived; one
 * `ping -c 1` per loop turn so every reply is flushed when its process exits.
 */
function pinger(
  env: NodeJS.ProcessEnv,
  mz: string,
): { child: ChildProcess; next: (ok: (rtt: number) => boolean) => Promise<number> } {
  const child = spawn(
    MRG,
    ["exec", "a", mz, "--", "busybox", "sh", "-c", "while :; do busybox ping -c 1 -W 2 b; done"],
    {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let waiting: { ok: (rtt: number) => boolean; resolve: (t: number) => void } | undefined;
  let buf = "";
  child.stdout?.on("data", (d: Buffer) => {
    const at = performance.now();
    buf += d.toString();
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const l of lines) {
      const m = /time=([\d.]+) ms/.exec(l);
      if (m && waiting?.ok(Number(m[1]))) {
        waiting.resolve(at);
        waiting = undefined;
      }
    }
  });
  const next = (ok: (rtt: number) => boolean) => new Promise<number>((resolve) => (waiting = { ok, resolve }));
  return { child, next };
}

export default defineBench({
  name: "cli",
  cases: {
    version: benchCase(() => {
      // The build the user runs (npm run build; scripts/setup.sh and npm test do it).
      build();
      medianMs(MRG, ["--version"], 2); // the page cache, as for a command run a second time
      return {
        run: () => ({ mrg: measure(MRG, ["--version"], 10), node: measure(process.execPath, ["-e", "0"], 10) }),
        // ms is the median of one run, not the time of all twenty.
        fields: (r) => ({ ms: r.mrg.ms, cpu_ms: r.mrg.cpu, node_ms: r.node.ms, node_cpu_ms: r.node.cpu, runs: 10 }),
        targets: { max: { ms: 150 } },
      };
    }),
    "emu-set": benchCase(async () => {
      if (skip) throw new Error(`emu-set needs the linux backend: ${skip}`);
      build();
      const tmp = mkdtempSync(join(tmpdir(), "bench-emu-set-"));
      const mz = `r1.e1.b${randomBytes(4).toString("hex")}`;
      const dataDir = join(tmp, "linux");
      const backend = await LinuxBackend.open({ dataDir, defaultImage: "busybox", imageFallback: "busybox" });
      const stack = await startPortalStack(tmp, backend).catch(async (e) => {
        await backend.close();
        throw e;
      });
      let ping: ReturnType<typeof pinger> | undefined;
      const cleanup = async () => {
        ping?.child.kill();
        await stack.close();
        const left = await sweep(prefixOf(mz), dataDir);
        await backend.close();
        rmSync(tmp, { recursive: true, force: true });
        if (!isClean(left)) throw new Error(`left behind: ${JSON.stringify(left)}`);
      };
      try {
        const [rlz, exp, proj] = mz.split(".") as [string, string, string];
        await stack.accepted(proj, exp, LINUX_PAIR, "ts");
        const up = await stack.mrg(["materialize", mz, "--timeout", "180"]);
        if (up.code !== 0) throw new Error(`materialize ${rlz}: ${up.stderr}${up.stdout}`);
        const env = {
          ...process.env,
          MERGE_PORTAL: stack.portal.url,
          MERGE_TOKEN: stack.admin.token,
          MERGE_CONFIG_DIR: join(tmp, "cfg"),
        };
        ping = pinger(env, mz);
        await ping.next((rtt) => rtt > 15 && rtt < 40); // the model's 10 ms each way
        const p = ping;
        /** ms from `mrg emu set` starting until ping sees the round trip `ok` accepts. */
        const change = async (latency: string, ok: (rtt: number) => boolean) => {
          const seen = p.next(ok);
          const t0 = performance.now();
          // Not spawnSync: the portal and the facility run in this process.
          const set = spawn(MRG, ["emu", "set", "ab", mz, "--latency", latency], {
            env,
            stdio: ["ignore", "ignore", "pipe"],
          });
          let stderr = "";
          set.stderr?.on("data", (d) => (stderr += d));
          const code = await new Promise<number | null>((resolve) => set.on("exit", resolve));
          if (code !== 0) throw new Error(`mrg emu set: exit ${code}: ${stderr}`);
          return (await seen) - t0;
        };
        return {
          run: async () => {
            const times = [
              await change("60ms", (rtt) => rtt > 100),
              await change("10ms", (rtt) => rtt < 40),
              await change("60ms", (rtt) => rtt > 100),
            ];
            return times.map(Math.round).sort((a, b) => a - b);
          },
          fields: (t) => ({ ms: t[1] ?? 0, min_ms: t[0] ?? 0, max_ms: t[2] ?? 0, runs: t.length }),
          targets: { max: { ms: 1000 } },
          cleanup,
        };
      } catch (e) {
        await cleanup();
        throw e;
      }
    }),
  },
});
