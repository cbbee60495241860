// Attach and detach for real: a portal with the materializations and XDC plugins, a
// facility (commander over mutual TLS, driver, rex) on the linux backend, an XDC host,
// all in this process; `mrg` as a subprocess. An XDC attached to a materialization
// pings its nodes by name over WireGuard (wireguard-go here), a second attach is a 409
// naming the first, no private key is in any portal record or response, detach cuts
// reachability, dematerialize detaches, delete leaves nothing.
// Needs root, network namespaces, wireguard-go and the Debian image; skipped otherwise.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LINUX_PAIR as MODEL } from "@merge/e2e/portal-stack";
import { isClean, leftovers, prefixOf } from "@merge/facility/linux";
import { skip as linuxSkip } from "@merge/facility/testing/linux";
import { attachScene } from "./attach-stack.ts";

const image = "/var/cache/merge/images/bookworm/usr/sbin/sshd";
const skip =
  linuxSkip ||
  (!existsSync(image) && "the Debian image is not built (scripts/setup.sh)") ||
  (!existsSync("/usr/bin/wireguard-go") && "wireguard-go is not installed (scripts/setup.sh)");

/** wireguard-go processes whose interface carries `prefix`. */
function wireguardOf(prefix: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      if ((argv[0] ?? "").endsWith("wireguard-go") && (argv[1] ?? "").startsWith(prefix)) out.push(Number(e));
    } catch {}
  }
  return out;
}

/** Every private key file under `dir`. */
function privateKeys(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".key") && d.endsWith("wireguard")) out.push(readFileSync(p, "utf8").trim());
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

describe("XDC attach over WireGuard", { skip }, () => {
  const { tmp, proj, mz: MZ, xdc: XDC, stack, mrg } = attachScene("mrg-xdc-attach-", MODEL);

  test("attach: nodes by name; 409 for a second; no private key in the portal; detach, dematerialize, delete", {
    timeout: 300_000,
  }, async () => {
    const { stack: s, host: h, dataDir } = stack();
    const up = await mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const made = await mrg(["xdc", "new", XDC]);
    assert.equal(made.code, 0, made.stderr);

    // Bad input first: clear errors, nothing attached.
    const bad = await mrg(["xdc", "attach", XDC, "nonsense"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /not a materialization.*realization\.experiment\.project/);
    const other = await mrg(["xdc", "attach", XDC, `r1.e1.pzzzz`]);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /attaches to project/);
    const notMz = await mrg(["xdc", "attach", XDC, `r9.e1.${proj}`]);
    assert.notEqual(notMz.code, 0);
    assert.match(notMz.stderr, /is not materialized/);

    const att = await mrg(["xdc", "attach", XDC, MZ, "--json"]);
    assert.equal(att.code, 0, att.stderr + att.stdout);
    const rec = JSON.parse(att.stdout) as { attached: string; attachedAddress: string };
    assert.equal(rec.attached, MZ);
    assert.match(rec.attachedAddress, /^172\.30\.\d+\.\d+\/16$/);
    assert.equal(h.status(XDC)?.attached, MZ);

    // Nodes by name from the XDC: the infrapod's dnsmasq, the infranet over the tunnel.
    const names = await h.exec(XDC, ["getent", "hosts", "a"]);
    assert.equal(names.code, 0, names.stderr);
    assert.match(names.stdout, /^172\.30\.\d+\.\d+\s+a\.infranet/);
    const nodeA = names.stdout.split(/\s+/)[0] as string;
    for (const node of ["a", "b"]) {
      const ping = await h.exec(XDC, ["ping", "-c", "2", "-i", "0.2", "-W", "2", node]);
      assert.equal(ping.code, 0, `ping ${node}: ${ping.stdout}${ping.stderr}`);
    }
    // And the node reaches the XDC (a neighbour on its infranet, answered by the infrapod).
    const back = await mrg([
      "exec",
      "a",
      MZ,
      "--",
      "busybox",
      "ping",
      "-c",
      "1",
      "-W",
      "2",
      rec.attachedAddress.split("/")[0] as string,
    ]);
    assert.equal(back.code, 0, back.stderr + back.stdout);

    // Attaching again to the same one is fine; to another is a 409 naming the first.
    const again = await mrg(["xdc", "attach", XDC, MZ]);
    assert.equal(again.code, 0, again.stderr);
    const second = await mrg(["xdc", "attach", XDC, `r2.e1.${proj}`]);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, new RegExp(`attached to ${MZ.replace(/\./g, "\\.")}; detach it first`));

    // Only public keys passed through the portal: no private key in any record or response.
    const secrets = [...privateKeys(join(tmp, "xdc-host")), ...privateKeys(join(dataDir, "mz"))];
    assert.equal(secrets.length, 2, "one key pair each side");
    const store = (await s.portal.store.range(""))
      .map((kv: { key: string; value: string }) => `${kv.key} ${kv.value}`)
      .join("\n");
    const shown = (await mrg(["xdc", "show", XDC, "--json"])).stdout + att.stdout;
    for (const k of secrets) {
      assert.ok(!store.includes(k), "a private key is in the portal's store");
      assert.ok(!shown.includes(k), "a private key is in a portal response");
    }

    // Detach cuts reachability and removes the tunnel on both sides.
    const det = await mrg(["xdc", "detach", XDC]);
    assert.equal(det.code, 0, det.stderr);
    assert.match(det.stdout, new RegExp(`detached XDC ${XDC.replace(".", "\\.")} from`));
    const cut = await h.exec(XDC, ["ping", "-c", "1", "-W", "1", nodeA]);
    assert.notEqual(cut.code, 0, "a node still answers after detach");
    assert.deepEqual(wireguardOf(h.prefixOf(XDC)), [], "the XDC's wireguard-go is gone");
    assert.deepEqual(wireguardOf(prefixOf(MZ)), [], "the infrapod's endpoint is gone with its last peer");
    assert.equal((await s.admin.xdc(proj, "x0")).attached, undefined);

    // Two XDCs on one endpoint; deleting one detaches it, the other still reaches the nodes.
    const X1 = `x1.${proj}`;
    assert.equal((await mrg(["xdc", "new", X1])).code, 0);
    for (const x of [XDC, X1]) {
      const r = await mrg(["xdc", "attach", x, MZ]);
      assert.equal(r.code, 0, r.stderr);
    }
    const del = await mrg(["xdc", "delete", XDC]);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(await h.leftovers(XDC), []);
    assert.deepEqual(wireguardOf(h.prefixOf(XDC)), []);
    const still = await h.exec(X1, ["ping", "-c", "1", "-W", "2", "b"]);
    assert.equal(still.code, 0, still.stdout + still.stderr);

    // Dematerialize detaches what is attached (the XDC's tunnel too).
    const down = await mrg(["dematerialize", MZ, "--timeout", "180"]);
    assert.equal(down.code, 0, down.stderr + down.stdout);
    const until = Date.now() + 30_000;
    while (h.status(X1)?.attached !== undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.status(X1)?.attached, undefined, "dematerialize detached the XDC");
    assert.equal((await s.admin.xdc(proj, "x1")).attached, undefined);
    assert.deepEqual(wireguardOf(h.prefixOf(X1)), []);
    const resolv = await h.exec(X1, ["cat", "/etc/resolv.conf"]);
    assert.doesNotMatch(resolv.stdout, /nameserver/);

    const del1 = await mrg(["xdc", "delete", X1]);
    assert.equal(del1.code, 0, del1.stderr);
    for (const x of [XDC, X1]) {
      assert.deepEqual(await h.leftovers(x), []);
      assert.deepEqual(wireguardOf(h.prefixOf(x)), []);
    }
    assert.deepEqual(wireguardOf(prefixOf(MZ)), []);
    const socks = existsSync("/var/run/wireguard") ? readdirSync("/var/run/wireguard") : [];
    assert.deepEqual(
      socks.filter((f) => [XDC, X1].some((x) => f.startsWith(h.prefixOf(x))) || f.startsWith(prefixOf(MZ))),
      [],
      "no wireguard-go control socket left",
    );
    assert.ok(isClean(await leftovers(prefixOf(MZ), dataDir)));
  });
});
