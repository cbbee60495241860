// npm start: for now, compiles the demo experiment (examples/demo.ts) and prints
// what the compiler made of it: nodes, links, addresses and routes. Later
// issues grow this into starting the portal and a facility.
import { fileURLToPath } from "node:url";
import { compileFile, describeConstraint, formatDiagnostic } from "@merge/model";

const demo = fileURLToPath(new URL("../../../examples/demo.ts", import.meta.url));
const result = await compileFile(demo);
for (const d of result.diagnostics) console.error(formatDiagnostic(d));
if (!result.ok || !result.xir) {
  console.error("start: the demo model did not compile");
  process.exit(1);
}
const x = result.xir;
const stats = result.stats;
console.log(
  `experiment ${x.name}: ${x.nodes.length} nodes, ${x.links.length} links, ${stats?.addresses} addresses, ${stats?.routes} routes`,
);
console.log(
  `parameters: ${Object.entries(x.parameters)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}`,
);
for (const n of x.nodes) {
  const addrs = n.sockets.map((s) => s.addrs.join(",")).join(" ");
  const wants = n.constraints.map(describeConstraint).join(", ");
  console.log(`  node ${n.name.padEnd(8)} ${n.image ?? "(default image)"}  ${addrs}${wants ? `  [${wants}]` : ""}`);
  for (const r of n.routes ?? []) console.log(`    route ${r.dest} via ${r.gateway} (socket ${r.socket})`);
}
for (const l of x.links) {
  const ends = l.endpoints.map((e) => e.node).join(" ");
  const wants = l.constraints.map(describeConstraint).join(", ");
  console.log(`  link ${l.name.padEnd(8)} ${ends}${wants ? `  [${wants}]` : ""}`);
}
