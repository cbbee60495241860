import { checkFacility, generateFacility } from "@merge/facility-model";

const c0 = process.cpuUsage();
const f = generateFacility({ nodes: 100000, seed: 1 });
const c1 = process.cpuUsage(c0);
checkFacility(f);
const c2 = process.cpuUsage(c0);
console.log(
  "gen cpu ms",
  ((c1.user + c1.system) / 1000).toFixed(0),
  "check cpu ms",
  ((c2.user + c2.system - c1.user - c1.system) / 1000).toFixed(0),
  "rss",
  Math.round(process.resourceUsage().maxRSS / 1024),
);
