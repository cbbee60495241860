import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { processesIn } from "../../src/linux/processes.ts";
import { isClean, leftovers, sweep } from "../../src/linux/sweep.ts";
import {
  wgDown,
  wgKeyPair,
  wgListenPort,
  wgPeer,
  wgPeers,
  wgRemovePeer,
  wgUp,
  wireGuardKind,
} from "../../src/linux/wireguard.ts";
import { skip } from "./fixture.ts";

const noWg =
  spawnSync("wg", ["--version"]).status !== 0
    ? "wireguard-tools is not installed (Debian package wireguard-tools)"
    : false;

describe("WireGuard between two namespaces", { skip: skip || noWg }, () => {
  const tag = randomBytes(3).toString("hex");
  const [a, b] = [`mgwa${tag}`, `mgwb${tag}`];
  // Names unique on the host: wireguard-go's control sockets share one directory.
  const [wa, wb] = [`mgwa${tag}`, `mgwb${tag}`];
  const dir = mkdtempSync(join(tmpdir(), "mrg-wg-"));
  const sh = (args: string[]) => spawnSync("ip", args, { encoding: "utf8" });
  after(async () => {
    await wgDown(a, wa);
    await wgDown(b, wb);
    sh(["netns", "del", a]);
    sh(["netns", "del", b]);
    rmSync(dir, { recursive: true, force: true });
  });

  test("keys stay in their files; a tunnel carries traffic; removing a peer cuts it; down ends the process", async () => {
    for (const n of [a, b]) assert.equal(sh(["netns", "add", n]).status, 0);
    assert.equal(sh(["link", "add", `mgwv${tag}`, "type", "veth", "peer", "name", `mgwp${tag}`]).status, 0);
    sh(["link", "set", `mgwv${tag}`, "netns", a, "name", "u0"]);
    sh(["link", "set", `mgwp${tag}`, "netns", b, "name", "u0"]);
    sh(["-n", a, "addr", "add", "192.168.77.1/30", "dev", "u0"]);
    sh(["-n", b, "addr", "add", "192.168.77.2/30", "dev", "u0"]);
    for (const n of [a, b]) sh(["-n", n, "link", "set", "u0", "up"]);

    const ka = await wgKeyPair(join(dir, "a"), "wg0");
    const kb = await wgKeyPair(join(dir, "b"), "wg0");
    assert.equal(statSync(ka.keyFile).mode & 0o777, 0o600);
    assert.notEqual(ka.publicKey, kb.publicKey);
    assert.ok(!readFileSync(ka.keyFile, "utf8").includes(ka.publicKey), "the key file holds the private key");
    // Made once: the same pair comes back.
    assert.equal((await wgKeyPair(join(dir, "a"), "wg0")).publicKey, ka.publicKey);
    // Computed in-process, as wg computes it.
    const wg = spawnSync("wg", ["pubkey"], { input: readFileSync(ka.keyFile), encoding: "utf8" });
    assert.equal(wg.stdout.trim(), ka.publicKey);

    await wgUp({ netns: a, name: wa, keyFile: ka.keyFile, address: "10.250.0.1/24", listenPort: 51820 });
    await wgUp({ netns: b, name: wb, keyFile: kb.keyFile, address: "10.250.0.2/24" });
    await wgPeer(a, wa, { publicKey: kb.publicKey, allowedIps: ["10.250.0.2/32"] });
    await wgPeer(b, wb, {
      publicKey: ka.publicKey,
      endpoint: "192.168.77.1:51820",
      allowedIps: ["10.250.0.0/24"],
      keepalive: 5,
    });

    const ping = () =>
      spawnSync("ip", ["netns", "exec", b, "ping", "-c", "1", "-W", "2", "10.250.0.1"], { encoding: "utf8" });
    const hasPing = spawnSync("ping", ["-V"]).status === 0;
    if (hasPing) assert.equal(ping().status, 0, "ping through the tunnel");
    const peers = await wgPeers(a, wa);
    assert.deepEqual(
      peers.map((p) => p.publicKey),
      [kb.publicKey],
    );

    await wgRemovePeer(a, wa, kb.publicKey);
    assert.deepEqual(await wgPeers(a, wa), []);
    if (hasPing) assert.notEqual(ping().status, 0, "no peer, no traffic");

    await wgDown(a, wa);
    await wgDown(b, wb);
    const deadline = Date.now() + 5000;
    while (processesIn([a, b]).some((p) => p.comm.startsWith("wireguard")) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(
      processesIn([a, b]).filter((p) => p.comm.startsWith("wireguard") && !isZombie(p.pid)),
      [],
    );
    assert.ok(!existsSync(`/var/run/wireguard/${wa}.sock`), "no control socket left");
  });
});

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

describe("WireGuard born in the host's namespace, and the sweep", { skip: skip || noWg }, () => {
  // A prefix of its own (mg + 6 hex): the sweep removes exactly what carries it.
  const prefix = `mg${randomBytes(3).toString("hex")}`;
  const [a, b] = [`${prefix}-i`, `${prefix}-x`];
  const [wa, wb] = [`${prefix}a`, `${prefix}b`];
  const dir = mkdtempSync(join(tmpdir(), "mrg-wg-underlay-"));
  after(async () => {
    await sweep(prefix, dir);
    rmSync(dir, { recursive: true, force: true });
  });

  test("the UDP sockets stay on the host's loopback, the clear side in the namespaces; sweep ends the processes and sockets", async () => {
    for (const n of [a, b]) assert.equal(spawnSync("ip", ["netns", "add", n]).status, 0);
    const ka = await wgKeyPair(join(dir, "a"), wa);
    const kb = await wgKeyPair(join(dir, "b"), wb);
    // No link joins the namespaces: only the host's loopback carries the tunnel.
    await wgUp({ netns: a, name: wa, keyFile: ka.keyFile, address: "10.251.0.1/24", underlay: "" });
    await wgUp({ netns: b, name: wb, keyFile: kb.keyFile, address: "10.251.0.2/24", underlay: "" });
    const port = await wgListenPort(a, wa);
    await wgPeer(a, wa, { publicKey: kb.publicKey, allowedIps: ["10.251.0.2/32"] });
    await wgPeer(b, wb, { publicKey: ka.publicKey, endpoint: `127.0.0.1:${port}`, allowedIps: ["10.251.0.0/24"] });
    const ping = spawnSync("ip", ["netns", "exec", b, "ping", "-c", "1", "-W", "3", "10.251.0.1"], {
      encoding: "utf8",
    });
    assert.equal(ping.status, 0, `ping over the loopback underlay: ${ping.stdout}${ping.stderr}`);
    // The interfaces are in the namespaces, not the host's.
    assert.notEqual(spawnSync("ip", ["link", "show", wa]).status, 0);
    assert.equal(spawnSync("ip", ["-n", a, "link", "show", wa]).status, 0);

    // wireguard-go runs in the host's namespace (where its socket is): the sweep finds it by its argv.
    const before = await leftovers(prefix, dir);
    if ((await wireGuardKind()) === "wireguard-go") {
      assert.equal(before.processes.filter((p) => p.comm === "wireguard-go").length, 2);
      assert.equal(before.wireguard.length, 2);
    }
    // A stale control socket (its process long gone) is the sweep's too.
    mkdirSync("/var/run/wireguard", { recursive: true });
    writeFileSync(`/var/run/wireguard/${prefix}z.sock`, "");
    const left = await sweep(prefix, dir);
    assert.ok(isClean(left), JSON.stringify(left));
    assert.ok(!existsSync(`/var/run/wireguard/${prefix}z.sock`));
    assert.ok(!existsSync(`/var/run/wireguard/${wa}.sock`));
  });
});
