import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LinuxDataPlane } from "../../src/linux/dataplane.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { experiment, isClean, leftovers, line3, link, localPlan, node, skip, suiteHarness } from "./fixture.ts";

describe("linux data plane: networks", { skip }, () => {
  const h = suiteHarness();

  test("3-node line with static routes: ping end to end across the routed path; names resolve", async () => {
    const mzid = h.mzid("line");
    await h.dp.materialize(localPlan(line3(), mzid));
    const ping = await h.dp.run(mzid, "a", ["ping", "-c", "3", "-W", "2", "10.0.1.2"]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, /3 packets received/);
    assert.match(ping.stdout, /ttl=63/, "one routed hop (b) on the way");
    // Hostname is the node name; names resolve to experiment addresses by default.
    assert.equal((await h.dp.run(mzid, "b", ["hostname"])).stdout.trim(), "b");
    const byName = await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "c"]);
    assert.match(byName.stdout, /PING c \(10\.0\.1\.2\)/);
    assert.equal(byName.code, 0);
    const ns = await h.dp.run(mzid, "c", ["nslookup", "a"]);
    assert.match(ns.stdout, /10\.0\.0\.1/);
    const infra = await h.dp.run(mzid, "c", ["nslookup", "a.infranet"]);
    assert.match(infra.stdout, /172\.30\.0\.2\b/);
    // Node to node on the infranet: c's ARP for a is answered by the infranet bridge (nodes get no broadcasts
    // from other nodes), so the path works without flooding.
    const viaInfranet = await h.dp.run(mzid, "c", ["ping", "-c", "1", "-W", "2", "a.infranet"]);
    assert.equal(viaInfranet.code, 0, viaInfranet.stdout + viaInfranet.stderr);
    // A node's broadcasts reach the infrapod, not the other nodes: 5 ARP requests for an unused address, none at a.
    const rx = async () =>
      Number((await h.dp.run(mzid, "a", ["cat", "/sys/class/net/eth0/statistics/rx_packets"])).stdout);
    const before = await rx();
    await h.dp.run(mzid, "c", ["arping", "-c", "5", "-w", "3", "-I", "eth0", "172.30.0.200"]);
    const arpAt = (await rx()) - before;
    assert.ok(arpAt < 5, `a received ${arpAt} frames while c broadcast 5 ARP requests`);
    // The infranet's router (the infrapod, by DHCP) is every node's default route.
    const def = await h.dp.run(mzid, "b", ["ip", "route", "show", "default"]);
    assert.match(def.stdout, /^default via 172\.30\.0\.1 dev eth0/);
    // Without b's forwarding route the path breaks: the routes are real.
    await h.dp.run(mzid, "a", ["ip", "route", "del", "10.0.1.0/24"]);
    const broken = await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "1", "10.0.1.2"]);
    assert.notEqual(broken.code, 0);
    // Each node is its own container: own PID namespace (init is pid 1), own root from the image.
    const init = await h.dp.run(mzid, "a", ["cat", "/proc/1/cmdline"]);
    assert.match(init.stdout, /mrg-node/, "pid 1 is the node's init");
    const procs = await h.dp.run(mzid, "a", ["sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    assert.ok(
      Number(procs.stdout) < 10,
      `the node sees only its own processes, not the host's (${procs.stdout.trim()})`,
    );
    assert.equal((await h.dp.run(mzid, "a", ["ls", "/usr/lib/mrg/busybox"])).code, 0);
    await h.dp.dematerialize(mzid);
    assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)));
  });

  test("names resolve to infranet addresses when the model asks", async () => {
    const mzid = h.mzid("infranames");
    const xp = line3();
    xp.parameters.nameResolution = "infranet";
    await h.dp.materialize(localPlan(xp, mzid));
    const r = await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "c"]);
    assert.match(r.stdout, /PING c \(172\.30\.0\.4\)/);
    assert.equal(r.code, 0);
    await h.dp.dematerialize(mzid);
  });

  test("a 25-node LAN: every node reaches every other", async () => {
    const mzid = h.mzid("lan25");
    const names = Array.from({ length: 25 }, (_, i) => `n${i}`);
    const xp = experiment(
      "lan25",
      // n0 and n1 also have a point-to-point link (socket 1).
      names.map((n, i) => node(n, i < 2 ? [[`10.1.0.${i + 1}/24`], [`10.2.0.${i + 1}/30`]] : [[`10.1.0.${i + 1}/24`]])),
      [
        link(
          "lan",
          names.map((n) => [n, 0] as [string, number]),
        ),
        link("p2p", [
          ["n0", 1],
          ["n1", 1],
        ]),
      ],
    );
    // Wired 10 nodes at a time: the point-to-point link is made with the first share, before its containers
    // start; the LAN, across all three shares, after the last share, while the first ones boot.
    const r = await h.dp.materialize(localPlan(xp, mzid), { wireShare: 10 });
    assert.ok(r.readyMs > 0);
    // From n0 to everyone, and from n24 to everyone, by name.
    for (const from of ["n0", "n24"]) {
      const script = `for n in ${names.join(" ")}; do ping -c 1 -W 2 $n >/dev/null || echo "FAIL $n"; done`;
      const out = await h.dp.run(mzid, from, ["sh", "-c", script]);
      assert.equal(out.stdout.trim(), "", `unreachable from ${from}: ${out.stdout}`);
    }
    const p2p = await h.dp.run(mzid, "n0", ["ping", "-c", "1", "-W", "2", "10.2.0.2"]);
    assert.equal(p2p.code, 0, `n0 -> n1 over the point-to-point link: ${p2p.stdout}${p2p.stderr}`);
    await h.dp.dematerialize(mzid);
  });

  test("two materializations with the same addresses never see each other", async () => {
    const one = h.mzid("twin1");
    const two = h.mzid("twin2");
    await h.dp.materialize(localPlan(line3(), one));
    await h.dp.materialize(localPlan(line3(), two));
    await h.dp.power(two, "c", "off");
    assert.equal(h.dp.powerState(two, "c"), "off");
    const ok = await h.dp.run(one, "a", ["ping", "-c", "1", "-W", "2", "10.0.1.2"]);
    assert.equal(ok.code, 0, "the first materialization still reaches its c");
    const none = await h.dp.run(two, "a", ["ping", "-c", "1", "-W", "1", "10.0.1.2"]);
    assert.notEqual(none.code, 0, "the second cannot reach the first's 10.0.1.2");
    await h.dp.dematerialize(one);
    await h.dp.dematerialize(two);
  });

  test("power: off, on, cycle keep the disk; reimage wipes it; re-materialize after dematerialize", async () => {
    const mzid = h.mzid("power");
    const plan = () => localPlan(line3(), mzid);
    await h.dp.materialize(plan());
    await h.dp.run(mzid, "a", ["sh", "-c", "echo hello > /root/mark"]);
    await h.dp.power(mzid, "a", "off");
    assert.equal(h.dp.powerState(mzid, "a"), "off");
    assert.throws(() => h.dp.exec(mzid, "a", ["true"]), /not running/);
    const down = await h.dp.run(mzid, "b", ["ping", "-c", "1", "-W", "1", "10.0.0.1"]);
    assert.notEqual(down.code, 0, "a powered-off node answers nothing");
    await h.dp.power(mzid, "a", "on");
    assert.equal(h.dp.powerState(mzid, "a"), "on");
    assert.equal((await h.dp.run(mzid, "b", ["ping", "-c", "1", "-W", "2", "10.0.0.1"])).code, 0);
    assert.equal((await h.dp.run(mzid, "a", ["cat", "/root/mark"])).stdout.trim(), "hello");
    await h.dp.power(mzid, "a", "cycle");
    assert.equal((await h.dp.run(mzid, "a", ["cat", "/root/mark"])).stdout.trim(), "hello");
    assert.equal((await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "10.0.1.2"])).code, 0);
    await h.dp.reimage(mzid, "a");
    assert.notEqual((await h.dp.run(mzid, "a", ["cat", "/root/mark"])).code, 0, "reimaged: the write is gone");
    assert.equal((await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "10.0.1.2"])).code, 0);
    // Dematerialize leaves nothing; the same materialization comes back.
    await h.dp.dematerialize(mzid);
    const left = await leftovers(prefixOf(mzid), h.dataDir);
    assert.ok(isClean(left), JSON.stringify(left));
    await h.dp.materialize(plan());
    assert.equal((await h.dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "10.0.1.2"])).code, 0);
    assert.notEqual((await h.dp.run(mzid, "a", ["cat", "/root/mark"])).code, 0, "a fresh node");
    await h.dp.dematerialize(mzid);
  });

  test("exec streams output as it comes", async () => {
    const mzid = h.mzid("exec");
    await h.dp.materialize(localPlan(line3(), mzid));
    const c = h.dp.exec(mzid, "b", ["sh", "-c", "echo one; sleep 1; echo two"]);
    const t0 = Date.now();
    const first = await new Promise<number>((resolve) => c.stdout?.once("data", () => resolve(Date.now() - t0)));
    const code = await new Promise<number>((resolve) => c.on("close", (k) => resolve(k ?? 1)));
    assert.equal(code, 0);
    assert.ok(first < 900, `first line after ${first} ms, before the command finished`);
    // A shell reading what it is sent, as an interactive session does.
    const sh = h.dp.exec(mzid, "b", ["/bin/sh"]);
    let out = "";
    sh.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    sh.stdin?.end("hostname\ncd /root && pwd\nexit 3\n");
    assert.equal(await new Promise<number>((resolve) => sh.on("close", (k) => resolve(k ?? 1))), 3);
    assert.equal(out, "b\n/root\n");
    await h.dp.dematerialize(mzid);
  });

  test("bad plans are refused with the field named, and nothing is created", async () => {
    const mzid = h.mzid("bad");
    // Fragments that do not hold together (the plan never makes these; a bad wire message could).
    const fragments = localPlan(line3(), mzid);
    const bc = fragments.find((f) => f.op === "link.create" && f.link.link === "bc");
    assert.ok(bc?.op === "link.create");
    bc.link.endpoints[1]!.node = "nope";
    await assert.rejects(h.dp.materialize(fragments), /links\[1\] \(bc\)\.endpoints\[1\]\.node "nope" is not a node/);
    await assert.rejects(
      h.dp.materialize(localPlan(line3(), mzid).filter((f) => f.op !== "infrapod.setup")),
      /no infrapod\.setup/,
    );
    const ok = line3([{ prop: "loss", op: "==", value: 2 }]);
    await assert.rejects(h.dp.materialize(localPlan(ok, mzid)), /loss = 2 is invalid; expected a fraction/);
    assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)));
  });

  test("an image that is not built: a clear error, or the configured fallback with a logged substitution", async () => {
    const mzid = h.mzid("image");
    const xp = line3();
    for (const n of xp.nodes) n.image = "trixie";
    await assert.rejects(
      h.dp.materialize(localPlan(xp, mzid)),
      /image "trixie" is not built on this host: run `cog images build trixie`/,
    );
    const logs: string[] = [];
    const dp = await LinuxDataPlane.open({
      dataDir: h.dataDir,
      defaultImage: "busybox",
      imageFallback: "busybox",
      log: (m) => logs.push(m),
    });
    await dp.materialize(localPlan(xp, mzid));
    assert.equal((await dp.run(mzid, "a", ["ping", "-c", "1", "-W", "2", "c"])).code, 0);
    assert.ok(
      logs.some((l) => /node a: image "trixie" is not built on this host; using "busybox"/.test(l)),
      logs.join("\n"),
    );
    assert.ok(
      logs.some((l) => /emulation: /.test(l)),
      "capabilities are reported when the data plane opens",
    );
    await dp.dematerialize(mzid);
  });
});
