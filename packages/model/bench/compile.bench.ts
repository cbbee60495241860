// npm run bench -- compile
//   10000-nodes      compileExperiment (schema validation, static analysis,
//                    addressing, routing) on a 10,000-node, 12,000-link model
//   10000-nodes-api  the same, plus building the model through the API
//   ts-typecheck-hello  compileFile of a two-node TypeScript model (type-check,
//                    run, pipeline) in a process that has compiled once before
//                    (warm language service), the model edited since, so the
//                    on-disk result cache does not answer; cold_ms is the first compile
// cpu_ms (this process's CPU time during the run) sits beside the wall-clock ms:
// on a shared, loaded machine it is the steadier figure.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { type CompileResult, checkReachability, compileExperiment, compileFile } from "../src/index.ts";
import { generateSites } from "./generate.ts";

interface Timed {
  result: CompileResult;
  cpuMs: number;
}

function timed(work: () => CompileResult): Timed {
  const start = process.cpuUsage();
  const result = work();
  const used = process.cpuUsage(start);
  return { result, cpuMs: Math.round((used.user + used.system) / 1000) };
}

const fields = ({ result: r, cpuMs }: Timed) => {
  if (!r.ok || !r.xir) {
    throw new Error(
      `compile failed: ${r.diagnostics
        .slice(0, 3)
        .map((d) => d.message)
        .join("; ")}`,
    );
  }
  // Untimed proof on a sample: every 250th node reaches every address of every other node.
  const sources = r.xir.nodes.map((_, i) => i).filter((i) => i % 250 === 0);
  const walk = checkReachability(r.xir, { sources });
  if (walk.failures.length) throw new Error(`unreachable: ${JSON.stringify(walk.failures.slice(0, 3))}`);
  return {
    cpu_ms: cpuMs,
    nodes: r.stats?.nodes ?? 0,
    links: r.stats?.links ?? 0,
    addresses: r.stats?.addresses ?? 0,
    routes: r.stats?.routes ?? 0,
    routing: r.stats?.routing ?? "",
    walked_pairs: walk.pairs,
    max_hops: walk.maxHops,
  };
};

/** Compiles the JSON Schema validator once (~0.2 s), as a long-running portal would have. */
function warmUp(): undefined {
  compileExperiment(generateSites(2, 1, 0).toXIR());
}

export default defineBench({
  name: "compile",
  cases: {
    "10000-nodes": benchCase(() => {
      const { xir, origins } = generateSites(1000, 9, 2000).compileParts();
      warmUp();
      return {
        run: () => timed(() => compileExperiment(xir, { origins })),
        fields,
        targets: { max: { ms: 2000, peak_mb: 1024 } },
      };
    }),
    "10000-nodes-api": benchCase(() => {
      warmUp();
      return {
        run: () =>
          timed(() => {
            const { xir, origins } = generateSites(1000, 9, 2000).compileParts();
            return compileExperiment(xir, { origins });
          }),
        fields,
        targets: { max: { ms: 2000, peak_mb: 1024 } },
      };
    }),
    "ts-typecheck-hello": benchCase(async () => {
      const dir = mkdtempSync(join(tmpdir(), "bench-typecheck-"));
      process.env.XDG_CACHE_HOME = join(dir, "cache");
      const file = join(dir, "hello.ts");
      const hello = (edit: number) =>
        `import { addressing, Network, memory, gb, latency, ms, routing } from "@merge/model";
const net = new Network("hello", addressing.ipv4, routing.static);
net.connect([net.node("a", memory.ge(gb(${edit + 1}))), net.node("b")], latency.eq(ms(10)));
export default net;
`;
      writeFileSync(file, hello(0));
      const start = performance.now();
      const cold = await compileFile(file);
      const coldMs = Math.round(performance.now() - start);
      if (!cold.ok) throw new Error(cold.diagnostics.map((d) => d.message).join("; "));
      writeFileSync(file, hello(1));
      return {
        run: () => compileFile(file),
        fields: (r: CompileResult) => {
          if (!r.ok || r.xir?.nodes[0]?.constraints[0]?.value !== 2 * 2 ** 30)
            throw new Error("the edited model did not compile");
          return { cold_ms: coldMs };
        },
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
        targets: { max: { ms: 800 } },
      };
    }),
  },
});
