// `npm start -- --wide-area`: the demo is a wide-area facility of shared hosts (three sites on this
// machine, site1 and site2 behind a router that delays each way, agents measuring what is free, NAT in
// the model). As a user, exactly as the README says: add an SSH key, push examples/wide-area.ts, realize
// and materialize it; each node lands on its own shared host (one per experiment), and each is reached
// from outside with real ssh through its host's NAT at the address and port `mrg show materialization`
// gives. Then dematerialize and stop: nothing of the hosts is left (agents, namespaces, NAT, fabric).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  assertHostsGone,
  cliOk,
  type HostStack,
  type ListedHost,
  processesWhere,
  startHosts,
  stopHosts,
} from "./fixtures/start-stack.ts";

const EXAMPLE = fileURLToPath(new URL("../../../examples/wide-area.ts", import.meta.url));

/** Type-check servers `mrg compile` started with their socket under `dir`. */
const typecheckServers = (dir: string): number[] =>
  processesWhere((argv) => argv.includes("typecheck-server.ts") && argv.includes(join(dir, "cache")));

const noImage = !existsSync("/var/cache/merge/images/bookworm");

describe("npm start -- --wide-area", {
  skip:
    process.getuid?.() !== 0
      ? "needs root for the linux backend"
      : noImage
        ? "needs the bookworm image (scripts/setup.sh)"
        : false,
}, () => {
  test("three shared sites; the example lands one node a site; ssh through each host's NAT; stop leaves nothing", {
    timeout: 900_000,
  }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), "mrg-start-wide-"));
    let up: HostStack | undefined;
    try {
      up = await startHosts(tmp, ["--wide-area", "--ssh-port", "0"], ["site0", "site1", "site2"], 600_000);
      const { stack, hosts } = up;
      assert.match(stack.out(), /npx mrg push examples\/wide-area\.ts wide\.admin/, "start says what to try");

      const ok = cliOk(stack.url, join(tmp, "cfg"), "mrg", tmp);
      const key = join(tmp, "id_ed25519");
      assert.equal(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status, 0);
      await ok(["login", "admin", "--password", stack.password as string]);
      await ok(["keys", "add", `${key}.pub`]);
      await ok(["new", "experiment", "wide.admin"]);
      // Compiled here and pushed as XIR: a loaded machine's portal may give up on compiling (its time limit).
      // The type-check server that compile starts lives in this test's cache, and goes with it (below).
      const cache = process.env.XDG_CACHE_HOME;
      process.env.XDG_CACHE_HOME = join(tmp, "cache");
      const xir = await ok(["compile", EXAMPLE]).finally(() => {
        if (cache === undefined) delete process.env.XDG_CACHE_HOME;
        else process.env.XDG_CACHE_HOME = cache;
      });
      writeFileSync(join(tmp, "wide-area.json"), xir);
      await ok(["push", join(tmp, "wide-area.json"), "wide.admin"]);
      await ok(["realize", "r1.wide.admin", "--accept"]);
      const active = await ok(["materialize", "r1.wide.admin", "--timeout", "600"]);
      assert.match(active, /r1\.wide\.admin is active: 3 nodes/);

      // One node of the experiment on each shared host.
      const cog = cliOk(stack.url, join(tmp, "cfg"), "cog", tmp);
      const onHost = (JSON.parse(await cog(["host", "list", "--json"])) as ListedHost[]).map((h) => [
        h.name,
        h.nodes.filter((n) => n.endsWith("(r1.wide.admin)")).length,
      ]);
      assert.deepEqual(onHost, [
        ["site0", 1],
        ["site1", 1],
        ["site2", 1],
      ]);

      // As the README says: show gives each node's `ssh -p PORT ADDRESS`; real ssh through the NAT reaches it.
      const shown = await ok(["show", "materialization", "r1.wide.admin"]);
      const control = [...shown.matchAll(/│ ([abc]) +│ ssh -p (\d+) ([\d.]+) \(ports/g)].map((m) => ({
        node: m[1] as string,
        port: m[2] as string,
        address: m[3] as string,
      }));
      assert.deepEqual(control.map((c) => c.node).sort(), ["a", "b", "c"], shown);
      assert.deepEqual(
        [...new Set(control.map((c) => c.address))].sort(),
        hosts.map((h) => h.underlay).sort(),
        "each node's ports are on its own host's address",
      );
      for (const c of control) {
        const ssh = spawnSync(
          "ssh",
          [
            ...["-p", c.port, "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"],
            ...["-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", `admin@${c.address}`, "hostname"],
          ],
          { encoding: "utf8", timeout: 60_000 },
        );
        assert.equal(ssh.stdout.trim(), c.node, `ssh -p ${c.port} admin@${c.address}: ${ssh.stderr}`);
      }

      await ok(["dematerialize", "r1.wide.admin"]);
      await assertHostsGone(up);
      // Nothing forwards any more: the port leads nowhere.
      const after = spawnSync(
        "ssh",
        ["-p", control[0]!.port, "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", `admin@${control[0]!.address}`],
        { encoding: "utf8", timeout: 20_000 },
      );
      assert.notEqual(after.status, 0);
    } finally {
      await stopHosts(up, typecheckServers(tmp));
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
