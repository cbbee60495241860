/**
 * The infranet bridge keeps the neighbour entries it answers ARP from for its
 * nodes (container.ts, `proxy_arp_wifi`) however its ports arrive: nodes
 * behind another host's VXLAN port get the infrapod's ARP answered by their
 * host's switch from these entries alone. A bridge that took its lowest
 * port's MAC changed it when a later port had a lower one, and the kernel
 * flushed every entry of `ibr`, permanent ones too.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { nodesWire } from "../../src/linux/container.ts";
import { infrapodCreate } from "../../src/linux/infrapod.ts";
import { namesOf, prefixOf } from "../../src/linux/names.ts";
import { type InfranetPlan, macFromIp, type NodePlan } from "../../src/linux/record.ts";
import { skip, suiteHarness } from "./fixture.ts";

const infranet: InfranetPlan = { subnet: "172.30.0.0/16", gateway: "172.30.0.1" };

function node(k: number): NodePlan {
  const address = `172.30.0.${k + 2}`;
  return { name: `n${k}`, infranet: { address, mac: macFromIp(address) }, interfaces: [], routes: [] };
}

const ip = (ns: string, ...args: string[]) => spawnSync("ip", ["-n", ns, ...args], { encoding: "utf8" }).stdout.trim();

describe("the infranet bridge", { skip }, () => {
  const h = suiteHarness();

  test("nodes wired one by one, then a port with the lowest MAC: every node's permanent entry stays", async () => {
    const prefix = prefixOf(h.mzid("ibr"));
    const pod = namesOf(prefix).infrapod;
    await infrapodCreate(h.dp.env, prefix, infranet);
    const mac = () => /link\/ether (\S+)/.exec(ip(pod, "link", "show", "ibr"))?.[1];
    const before = mac();
    const nodes = Array.from({ length: 6 }, (_, k) => node(k));
    // One at a time, as rex's node setups arrive on a host agent.
    for (const n of nodes) await nodesWire(h.dp.env, prefix, infranet, [n]);
    // A port whose MAC is below every other (a bridge left to pick would take it).
    await h.dp.env
      .ipIn(pod)
      .submit([
        "link add name zlow address 02:00:00:00:00:01 type veth peer name zlow1",
        "link set dev zlow master ibr up",
      ]);
    const perm = ip(pod, "neigh", "show", "dev", "ibr", "nud", "permanent");
    for (const n of nodes)
      assert.match(
        perm,
        new RegExp(`^${n.infranet.address.replaceAll(".", "\\.")} lladdr ${n.infranet.mac}`, "m"),
        `the permanent entry of ${n.name} is on ibr (have: ${perm || "none"})`,
      );
    assert.equal(mac(), before, "ibr keeps the MAC it was made with");
  });
});
