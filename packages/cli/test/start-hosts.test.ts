// `npm start -- --hosts 3`: the demo facility over three hosts on this machine (each a network
// namespace with its own underlay address and host agent process). As a user: push a LAN of three
// bare-metal busybox nodes and a VM, realize it onto phobos's four testbed nodes (round robin over h1, h2, h3),
// materialize; as the operator, `cog host list` shows the three hosts up and which nodes each runs;
// nodes on different hosts ping each other across the LAN (VXLAN between the hosts). Then the stack
// stops with the materialization still up: the hosts go completely (agents, the nodes and harbor
// they carried, their namespaces, the fabric).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { harborMzid, prefixOn } from "@merge/facility/linux";
import {
  assertHostsGone,
  cliOk,
  type HostStack,
  type ListedHost,
  netns,
  startHosts,
  stopHosts,
} from "./fixtures/start-stack.ts";

// phobos: n0, n1 dual personality, n2 hypervisor only, n3 bare metal only; over three hosts n0 and n3
// are on h1, n1 on h2, n2 on h3. Three bare-metal nodes take n0, n1, n3; the VM d can only go to n2.
const LAN4 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("lan4", addressing.ipv4, routing.static);
const bare = ["a", "b", "c"].map((x) => net.node(x, image("busybox"), metal()));
net.connect([...bare, net.node("d", image("busybox"))]);
export default net;
`;

describe("npm start -- --hosts 3", {
  skip: process.getuid?.() === 0 ? false : "needs root for the linux backend",
}, () => {
  test("three hosts with agents, a LAN over them, cog host list per host, ping across hosts; stop removes every host", {
    timeout: 600_000,
  }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), "mrg-start-hosts-"));
    let up: HostStack | undefined;
    try {
      up = await startHosts(tmp, ["--hosts", "3", "--ssh-port", "0"], ["h1", "h2", "h3"]);
      const { stack, hosts } = up;
      for (const h of hosts) {
        assert.ok(netns().includes(h.netns), `${h.name} is a namespace`);
        assert.notEqual(h.agent, stack.facility);
      }
      assert.equal(new Set(hosts.map((h) => h.underlay)).size, 3, "each host its own underlay address");

      const ok = cliOk(stack.url, join(tmp, "cfg"), "mrg", tmp);
      const cog = cliOk(stack.url, join(tmp, "cfg"), "cog", tmp);
      await ok(["login", "admin", "--password", stack.password as string]);
      await ok(["new", "experiment", "lan.admin"]);
      writeFileSync(join(tmp, "lan4.ts"), LAN4);
      await ok(["push", join(tmp, "lan4.ts"), "lan.admin"]);
      await ok(["realize", "r1.lan.admin", "--accept"]);
      const active = await ok(["materialize", "r1.lan.admin", "--timeout", "240"]);
      assert.match(active, /r1\.lan\.admin is active: 4 nodes, 1 links?/);

      const listed = await cog(["host", "list", "--json"]);
      const byHost = JSON.parse(listed) as ListedHost[];
      assert.deepEqual(
        byHost.map((h) => [h.name, h.state, h.underlay]),
        hosts.map((h) => [h.name, "up", h.underlay]),
      );
      const nodeOf = (h: ListedHost) => h.nodes.filter((n) => n.endsWith("(r1.lan.admin)")).map((n) => n.split(" ")[0]);
      assert.deepEqual(byHost.flatMap(nodeOf).sort(), ["a", "b", "c", "d"], `every node on a host: ${listed}`);
      assert.ok(
        byHost.every((h) => nodeOf(h).length > 0),
        `the LAN spans the three hosts: ${byHost.map((h) => `${h.name}: ${nodeOf(h)}`).join("; ")}`,
      );
      const table = await cog(["host", "list"]);
      for (const h of byHost) for (const n of nodeOf(h)) assert.match(table, new RegExp(`${h.name}.*\\b${n}\\b`));

      // From a node on h2 to one on h3 and one on h1, by name (the infrapod's DNS on h1).
      const [from] = nodeOf(byHost[1]!);
      for (const to of [nodeOf(byHost[2]!)[0], nodeOf(byHost[0]!)[0]]) {
        const ping = await ok(["exec", from!, "r1.lan.admin", "--", "ping", "-c", "2", "-W", "3", to!]);
        assert.match(ping, /2 packets transmitted, 2 (packets )?received/, `${from} → ${to}`);
      }

      // Stopped with the LAN up: nothing of the hosts stays.
      const harborOn = (h: string) => harborMzid("main.harbor.phobos", join(tmp, "data", "hosts", h));
      const prefixes = hosts.flatMap((h) => [prefixOn("r1.lan.admin", h.name), prefixOn(harborOn(h.name), h.name)]);
      await assertHostsGone(up, prefixes);
      assert.deepEqual(
        readdirSync(join(tmp, "data", "hosts")).filter((f) => !f.endsWith(".log") && !f.endsWith("-certs")),
        [],
      );
    } finally {
      await stopHosts(up);
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
