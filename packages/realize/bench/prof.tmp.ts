import { generateResourceInternet } from "@merge/facility-model";
import { prepareInternet, realize } from "@merge/realize";
import { feasibleExperiment, random } from "../test/workload.ts";

const net = generateResourceInternet({ facilities: 2, nodesPerFacility: 50000, seed: 3 });
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
let t = cpu();
let w = performance.now();
const ix = prepareInternet(net);
console.log("index cpu", cpu() - t, "wall", performance.now() - w);
const x = feasibleExperiment(random(10000), net, "b", 10000);
for (let i = 0; i < 1; i++) {
  t = cpu();
  w = performance.now();
  const r = realize(x, ix);
  console.log("realize cpu", cpu() - t, "wall", performance.now() - w, r.ok);
}
