// `npm start -- --facilities 2 --hosts 2`: the demo facility over two hosts (its gateway on h1,
// whose agent gets the facility's site) and deimos on one machine, on the emulated wide area. As a
// user: a line of four bare-metal nodes, more than phobos holds, realized across both and
// materialized; the node at phobos's end of the external link pings the one at deimos's by name,
// over the wide area (15 ms each way). Stopping start removes the hosts, the sites and the wide area.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { prefixOn } from "@merge/facility/linux";
import { alive, cliIn, type Stack, startStack, stopStack } from "./fixtures/start-stack.ts";

const LINE4 = `
import { addressing, image, metal, Network, routing } from "@merge/model";
const net = new Network("line4", addressing.ipv4, routing.static);
const n = ["a", "b", "c", "d"].map((x) => net.node(x, image("busybox"), metal()));
for (let i = 0; i + 1 < n.length; i++) net.connect([n[i]!, n[i + 1]!]);
export default net;
`;

const noWg = spawnSync("wg", ["--version"]).status !== 0 ? "wireguard-tools is not installed" : false;
const netns = (): string[] => (existsSync("/run/netns") ? readdirSync("/run/netns") : []);

describe("npm start -- --facilities 2 --hosts 2", {
  skip: process.getuid?.() !== 0 ? "needs root for the linux backend" : noWg,
}, () => {
  test("an external link from the facility of two hosts to deimos: ping across by name; stop removes everything", {
    timeout: 600_000,
  }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), "mrg-start-mh-"));
    let stack: Stack | undefined;
    let agents: number[] = [];
    try {
      stack = await startStack(join(tmp, "data"), "auto", 0, join(tmp, "cfg"), [
        "--facilities",
        "2",
        "--hosts",
        "2",
        "--ssh-port",
        "0",
      ]);
      assert.equal(stack.backend, "linux");
      agents = (stack.started.hosts as { agent: number }[]).map((h) => h.agent);
      const fabric = stack.started.fabric as string;
      const sites = ((stack.started.more ?? []) as { site?: string }[]).flatMap((m) => (m.site ? [m.site] : []));
      assert.equal(sites.length, 1, "deimos has a site");
      const mrg = cliIn(stack.url, join(tmp, "cfg"), "mrg", tmp);
      const ok = async (args: string[]) => {
        const r = await mrg(args);
        assert.equal(r.code, 0, `mrg ${args.join(" ")}:\n${r.stderr}${r.stdout}`);
        return r.stdout;
      };
      await ok(["login", "admin", "--password", stack.password as string]);
      await ok(["new", "experiment", "line.admin"]);
      writeFileSync(join(tmp, "line4.ts"), LINE4);
      await ok(["push", join(tmp, "line4.ts"), "line.admin"]);
      await ok(["realize", "r1.line.admin", "--accept"]);
      await ok(["materialize", "r1.line.admin", "--timeout", "300"]);
      const st = JSON.parse(await ok(["show", "materialization", "r1.line.admin", "--json"])) as {
        status: string;
        nodes: { node: string; facility: string }[];
        links: { link: string; external?: string[] }[];
      };
      assert.equal(st.status, "active", JSON.stringify(st));
      // The line crosses once: the last node at phobos pings the first at deimos, by name.
      const order = ["a", "b", "c", "d"];
      const at = (n: string) => st.nodes.find((x) => x.node === n)?.facility;
      const k = order.findIndex((n, i) => i + 1 < order.length && at(n) !== at(order[i + 1]!));
      assert.ok(k >= 0, `the line crosses facilities: ${JSON.stringify(st.nodes)}`);
      const [from, to] = at(order[k]!) === "phobos" ? [order[k]!, order[k + 1]!] : [order[k + 1]!, order[k]!];
      const ping = await ok(["exec", from, "r1.line.admin", "--", "ping", "-c", "3", "-W", "3", to]);
      const times = [...ping.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
      assert.ok(times.length && Math.min(...times) >= 30, `${from}@phobos → ${to}@deimos over the wide area: ${ping}`);

      assert.equal(await stopStack(stack), 0, stack.out());
      const out = stack.out();
      for (const pid of agents) assert.equal(alive(pid), false, "the agents stop with start");
      // The gateway was on h1, its tunnel's socket in phobos's site: neither is left, nor deimos's site.
      assert.deepEqual(
        netns().filter(
          (n) => n.startsWith(fabric) || n.startsWith(prefixOn("r1.line.admin", `h1@${fabric}`)) || sites.includes(n),
        ),
        [],
        `no host, gateway or site namespace is left: ${out.slice(-3000)}`,
      );
    } finally {
      if (stack && stack.child.exitCode === null) await stopStack(stack);
      for (const pid of [stack?.facility, ...agents]) if (pid && alive(pid)) process.kill(pid, "SIGKILL");
      // What a facility on this machine keeps after start stops, by design (deimos's harbor): swept as start says.
      const deimos = join(tmp, "data", "sites", "deimos", "backend");
      if (stack && existsSync(deimos))
        await cliIn(stack.url, join(tmp, "cfg"), "cog", tmp)(["host", "sweep", "--all", "--data-dir", deimos]);
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
