import { SUITES } from "./suites.ts";
import { prepareInternet, realize, formatProblem } from "@merge/realize";
const inst = SUITES.heterogeneous!();
for (const { net, x } of inst) {
  const ix = prepareInternet(net);
  const c0 = process.cpuUsage();
  const r = realize(x, ix, undefined, { id: `q.${x.name}.p` });
  const c = process.cpuUsage(c0);
  console.log(x.name, x.nodes.length, x.links.length, r.ok, ((c.user + c.system) / 1000).toFixed(0), r.ok ? "" : r.problems.slice(0, 5).map(formatProblem).join("\n"));
}
