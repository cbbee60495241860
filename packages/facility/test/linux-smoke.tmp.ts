import { LinuxDataPlane } from "../src/linux/index.ts";
import type { MzPlan } from "../src/linux/plan.ts";
const dp = await LinuxDataPlane.open({ dataDir: "/tmp/mgsmoke", log: console.log });
const mzid = `smoke${Date.now()}`;
const plan: MzPlan = {
  mzid, infranet: { subnet: "172.30.0.0/16", gateway: "172.30.0.1" }, nameResolution: "experiment",
  nodes: [
    { name: "a", infranet: { address: "172.30.0.10", mac: "02:6d:00:00:00:0a" }, interfaces: [{ socket: 0, addrs: ["10.0.0.1/24"] }], routes: [{ dest: "10.0.1.0/24", gateway: "10.0.0.2", socket: 0 }] },
    { name: "b", infranet: { address: "172.30.0.11", mac: "02:6d:00:00:00:0b" }, interfaces: [{ socket: 0, addrs: ["10.0.0.2/24"] }, { socket: 1, addrs: ["10.0.1.1/24"] }], routes: [] },
    { name: "c", infranet: { address: "172.30.0.12", mac: "02:6d:00:00:00:0c" }, interfaces: [{ socket: 0, addrs: ["10.0.1.2/24"] }], routes: [{ dest: "10.0.0.0/24", gateway: "10.0.1.1", socket: 0 }] },
  ],
  links: [
    { name: "ab", endpoints: [{ node: "a", socket: 0 }, { node: "b", socket: 0 }], emulation: { latency: 10e6 } },
    { name: "bc", endpoints: [{ node: "b", socket: 1 }, { node: "c", socket: 0 }] },
  ],
};
try {
  const r = await dp.materialize(plan, { timeoutMs: 20000 });
  console.log(r);
  console.log(await dp.run(mzid, "a", ["ping", "-c", "3", "10.0.1.2"]));
  console.log(await dp.run(mzid, "a", ["ping", "-c", "1", "c"]));
  console.log(await dp.run(mzid, "a", ["hostname"]));
} catch (e) { console.error("FAIL", e); }
finally {
  console.log(await dp.dematerialize(mzid));
}
