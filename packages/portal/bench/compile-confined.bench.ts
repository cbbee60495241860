/**
 * Confined model compiles and the portal's responsiveness under compile load.
 *
 *   ts-hello:          one confined compile of examples/hello.ts (warm: a compile ran before), ms
 *   py-hello:          the same for examples/python/hello-world.py
 *   health-under-load: p99 ms of GET /health (every 10 ms) while 4 compiles of a
 *                      55,000-node XIR (~7 MB, the largest size a push accepts) run
 *                      on a portal child process; target < 100 ms
 *
 * Each line names the confinement in force (availableConfinement).
 */
import { readFileSync } from "node:fs";
import { benchCase, defineBench } from "@merge/bench";
import { availableConfinement, compilePythonSource, runTypeScriptSource } from "@merge/model";
import { lansXir } from "../test/size.ts";
import { startServer } from "./server.ts";

const example = (path: string) => readFileSync(new URL(`../../../examples/${path}`, import.meta.url), "utf8");

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

export default defineBench({
  name: "compile-confined",
  cases: {
    "ts-hello": benchCase(async () => {
      const source = example("hello.ts");
      await runTypeScriptSource(source, "hello.ts");
      return {
        run: () => runTypeScriptSource(source, "hello.ts"),
        fields: (r) => ({ ok: r.ok, nodes: r.xir?.nodes.length ?? 0, confinement: r.confinement }),
        targets: { max: { ms: 3000 } },
      };
    }),
    "py-hello": benchCase(async () => {
      const source = example("python/hello-world.py");
      await compilePythonSource(source, "hello-world.py");
      return {
        run: () => compilePythonSource(source, "hello-world.py"),
        fields: (r) => ({ ok: r.ok, nodes: r.xir?.nodes.length ?? 0, confinement: availableConfinement() }),
        targets: { max: { ms: 3000 } },
      };
    }),
    "health-under-load": benchCase(async () => {
      const s = await startServer();
      const xir = JSON.stringify(lansXir("big", 1, 55_000));
      const body = JSON.stringify({ source: xir, lang: "xir" });
      // Raw requests whose answers are not parsed: this process measures /health, so it must stay idle itself.
      const compile = () =>
        fetch(`${s.url}/compile`, {
          method: "POST",
          headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
          body,
        }).then(async (r) => ({ status: (await r.arrayBuffer()).byteLength > 0 && r.ok ? "compiled" : "error" }));
      return {
        run: async () => {
          const compiles = Promise.all(Array.from({ length: 4 }, compile));
          let done = false;
          void compiles.finally(() => {
            done = true;
          });
          const latencies: number[] = [];
          while (!done) {
            const t = performance.now();
            await fetch(`${s.url}/health`).then((r) => r.arrayBuffer());
            latencies.push(performance.now() - t);
            await new Promise((r) => setTimeout(r, 10));
          }
          const results = await compiles;
          return { latencies, compiled: results.filter((r) => r.status === "compiled").length };
        },
        fields: (r) => ({
          p99_ms: Math.round(quantile(r.latencies, 0.99) * 10) / 10,
          p50_ms: Math.round(quantile(r.latencies, 0.5) * 10) / 10,
          max_ms: Math.round(Math.max(...r.latencies) * 10) / 10,
          health_calls: r.latencies.length,
          compiled: r.compiled,
          xir_bytes: xir.length,
          confinement: availableConfinement(),
        }),
        cleanup: () => s.stop(),
        targets: { max: { p99_ms: 100 } },
      };
    }),
  },
});
