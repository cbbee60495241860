import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  type Capabilities,
  describeCapabilities,
  detectCapabilities,
  requireCapabilities,
} from "../../src/linux/capabilities.ts";
import { skip } from "./fixture.ts";

const full: Capabilities = {
  root: true,
  netns: true,
  veth: true,
  bridge: true,
  netem: true,
  tbf: true,
  vlan: true,
  vxlan: true,
  overlayfs: true,
  cgroup: { version: 2, cpu: "/sys/fs/cgroup", memory: "/sys/fs/cgroup" },
  dnsmasq: "/usr/sbin/dnsmasq",
  busybox: "/usr/bin/busybox",
  gcc: "/usr/bin/gcc",
  iperf3: null,
  debootstrap: null,
};

describe("capability detection", () => {
  test("names every missing requirement in one error", () => {
    assert.throws(
      () => requireCapabilities({ ...full, root: false, overlayfs: false, dnsmasq: null, netem: false, gcc: null }),
      (e: Error) =>
        /root privileges/.test(e.message) &&
        /overlayfs/.test(e.message) &&
        /dnsmasq \(Debian package dnsmasq-base\)/.test(e.message) &&
        /netem or gcc/.test(e.message),
    );
    assert.doesNotThrow(() => requireCapabilities(full));
  });

  test("says which mechanism replaces a missing one", () => {
    const withNetem = describeCapabilities(full).join("\n");
    assert.match(withNetem, /emulation: netem \(kernel\)/);
    const without = describeCapabilities({
      ...full,
      netem: false,
      vlan: false,
      cgroup: { version: null, cpu: null, memory: null },
    }).join("\n");
    assert.match(without, /netem MISSING -> mrg-emu/);
    assert.match(without, /802\.1Q sub-interfaces: MISSING -> not needed/);
    assert.match(without, /cores and memory are not enforced/);
  });

  test("detection on this host agrees with trying netem directly", { skip }, async () => {
    const caps = await detectCapabilities();
    assert.equal(caps.root, true);
    assert.equal(caps.netns, true);
    const ns = `mgcapt${randomBytes(2).toString("hex")}`;
    spawnSync("ip", ["netns", "add", ns]);
    try {
      spawnSync("ip", ["-n", ns, "link", "add", "name", "x0", "type", "veth", "peer", "name", "x1"]);
      const r = spawnSync("tc", ["-n", ns, "qdisc", "add", "dev", "x0", "root", "netem", "delay", "1ms"]);
      assert.equal(caps.netem, r.status === 0);
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
    // Detection leaves no scratch namespace behind.
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    assert.doesNotMatch(left, /mgcap[0-9a-f]{6}\b/);
  });
});
