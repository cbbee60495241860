// npm run bench -- python
//   hello-world        one 2-node script in a fresh process: probes, interpreter start,
//                      sandbox (namespace when root), report
//   hello-world-warm   the same once the probes are done (what a long-running portal sees)
//   hello-world-hooks  the same without a network namespace (in-process audit hooks only)
//   10000-nodes        a generated script: 400 LANs of 25 hosts behind routers joined in a
//                      ring, explicit ip4 on every socket (10,400 nodes, 800 links)
//   10000-nodes-compile  the same through compileFile (run + schema validation + static analysis)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchCase, defineBench } from "@merge/bench";
import { compileFile } from "../src/index.ts";
import { type PythonModelResult, runPythonModel } from "../src/python.ts";

const hello = fileURLToPath(new URL("../../../examples/python/hello-world.py", import.meta.url));

function bigModel(): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "mergexp-bench-"));
  const file = join(dir, "big.py");
  writeFileSync(
    file,
    `from mergexp import *

net = Network('big')
LANS, HOSTS = 400, 25
routers = [net.node('r%d' % i, proc.cores >= 2) for i in range(LANS)]
for i, r in enumerate(routers):
    hosts = [net.node('h%d-%d' % (i, j), memory.capacity >= gb(2)) for j in range(HOSTS)]
    lan = net.connect([r] + hosts, capacity == gbps(1))
    lan[r].socket.addrs = ip4('10.%d.%d.1/24' % (i // 256, i % 256))
    for j, h in enumerate(hosts):
        lan[h].socket.addrs = ip4('10.%d.%d.%d/24' % (i // 256, i % 256, 10 + j))
for i in range(LANS):
    a, b = routers[i], routers[(i + 1) % LANS]
    wan = net.connect([a, b], latency == ms(1))
    wan[a].socket.addrs = ip4('172.16.%d.%d/30' % (i * 4 // 256, i * 4 % 256 + 1))
    wan[b].socket.addrs = ip4('172.16.%d.%d/30' % (i * 4 // 256, i * 4 % 256 + 2))
experiment(net)
`,
  );
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const fields = (r: PythonModelResult) => ({
  nodes: r.experiment.nodes.length,
  links: r.experiment.links.length,
  sandbox: r.sandbox,
});

export default defineBench({
  name: "python",
  cases: {
    "hello-world": benchCase(() => ({
      run: () => runPythonModel(hello),
      fields,
      targets: { max: { ms: 1000 } },
    })),
    "hello-world-warm": benchCase(async () => {
      await runPythonModel(hello);
      return { run: () => runPythonModel(hello), fields, targets: { max: { ms: 500 } } };
    }),
    "hello-world-hooks": benchCase(() => ({
      run: () => runPythonModel(hello, { sandbox: "hooks" }),
      fields,
      targets: { max: { ms: 1000 } },
    })),
    "10000-nodes": benchCase(() => {
      const { file, cleanup } = bigModel();
      return { run: () => runPythonModel(file), fields, cleanup, targets: { max: { ms: 5000 } } };
    }),
    "10000-nodes-compile": benchCase(() => {
      const { file, cleanup } = bigModel();
      return {
        run: () => compileFile(file),
        fields: (r) => {
          if (!r.ok)
            throw new Error(
              r.diagnostics
                .slice(0, 3)
                .map((d) => d.message)
                .join("; "),
            );
          return { nodes: r.stats?.nodes ?? 0, links: r.stats?.links ?? 0, addresses: r.stats?.addresses ?? 0 };
        },
        cleanup,
        targets: { max: { ms: 8000 } },
      };
    }),
  },
});
