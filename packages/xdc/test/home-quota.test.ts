// Per-user home quotas for real (quota.home, portal/src/project-volume.ts): with an 8 MiB home
// quota in the portal's policy, the member's /home/<user> is a volume of its own in the XDC and on
// the nodes of a materialization (a portal, a facility on the linux backend with the portal's
// storage, an XDC host, in this process). Writing past the quota fails with ENOSPC in the XDC and on
// a node; the project directory and the node go on working; deleting the file frees the space
// everywhere (1 KiB writes: a 1 MiB write fails whole when less is left, which leaves room
// for a small file); `mrg quota` shows the quota and its use. Needs root, loop devices, network
// namespaces and the Debian image.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import { LINUX_PAIR as MODEL } from "@merge/e2e/portal-stack";
import { skip as linuxSkip } from "@merge/facility/testing/linux";
import { attachScene } from "./attach-stack.ts";
import { policyWithQuota } from "./fixture.ts";

const skip =
  linuxSkip ||
  (!existsSync("/var/cache/merge/images/bookworm/usr/sbin/sshd") &&
    "the Debian image is not built (scripts/setup.sh)") ||
  (!existsSync("/dev/loop-control") && "no loop devices");

const FULL = /No space left on device/;

describe("home quotas in the XDC and on nodes", { skip }, () => {
  const {
    proj,
    mz: MZ,
    xdc: XDC,
    stack,
    mrg,
  } = attachScene("mrg-home-quota-", MODEL, (tmp) => ({
    policyFile: policyWithQuota(tmp, "  home:\n    default: 8MiB\n"),
  }));
  const onNode = (node: string, script: string) => mrg(["exec", node, MZ, "--", "sh", "-c", script]);
  const inXdc = (script: string) => stack().host.exec(XDC, ["runuser", "-u", "admin", "--", "sh", "-c", script]);

  test("ENOSPC past the home quota in the XDC and on a node; the rest works; deleting frees it", {
    timeout: 300_000,
  }, async () => {
    const up = await mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const made = await mrg(["xdc", "new", XDC]);
    assert.equal(made.code, 0, made.stderr);

    // mrg quota: the home's quota, and the project without one.
    const q = await mrg(["quota", "--json"]);
    assert.equal(q.code, 0, q.stderr);
    const usage = JSON.parse(q.stdout) as {
      home: { path: string; quota: number | null };
      projects: { path: string; quota: number | null }[];
    };
    assert.deepEqual([usage.home.path, usage.home.quota], ["/home/admin", 8 * 1024 * 1024]);
    assert.deepEqual(
      usage.projects.find((p) => p.path === `/proj/${proj}`),
      { path: `/proj/${proj}`, quota: null, used: null, available: null },
    );
    const table = await mrg(["quota"]);
    assert.match(table.stdout, /\/home\/admin\s+│ 8 MiB\s+│ [\d.]+ KiB\s+│ [\d.]+ MiB/);

    // The XDC fills the home: ENOSPC; the node then cannot write there either; /proj and the node go on.
    const x = await inXdc("dd if=/dev/zero of=/home/admin/big bs=1k count=16384");
    assert.notEqual(x.code, 0, "a write past the quota fails in the XDC");
    assert.match(x.stderr, FULL);
    const n = await onNode("a", "su admin -s /bin/sh -c 'echo more > /home/admin/more.txt'");
    assert.notEqual(n.code, 0, "the node sees the same full home");
    assert.match(n.stderr + n.stdout, FULL);
    const rest = await onNode(
      "a",
      `echo ok > /proj/${proj}/ok.txt && echo ok > /tmp/ok.txt && cat /proj/${proj}/ok.txt`,
    );
    assert.equal(rest.code, 0, rest.stderr);
    assert.equal(rest.stdout, "ok\n");
    const full = JSON.parse((await mrg(["quota", "--json"])).stdout) as { home: { available: number } };
    assert.ok(full.home.available < 1024 * 1024, `available ${full.home.available}`);

    // Deleting in the XDC frees the space on the node; the node fills it: ENOSPC there; deleting there frees it.
    assert.equal((await inXdc("rm /home/admin/big")).code, 0);
    const freed = await onNode(
      "a",
      "su admin -s /bin/sh -c 'echo more > /home/admin/more.txt' && cat /home/admin/more.txt",
    );
    assert.equal(freed.code, 0, freed.stderr);
    assert.equal(freed.stdout, "more\n");
    const nb = await onNode("b", "su admin -s /bin/sh -c 'dd if=/dev/zero of=/home/admin/big bs=1k count=16384'");
    assert.notEqual(nb.code, 0, "a write past the quota fails on a node");
    assert.match(nb.stderr + nb.stdout, FULL);
    assert.notEqual((await inXdc("echo x > /home/admin/x.txt")).code, 0, "the XDC sees it full");
    assert.equal((await onNode("b", "rm /home/admin/big")).code, 0);
    const later = await inXdc("echo x > /home/admin/x.txt && cat /home/admin/x.txt /home/admin/more.txt");
    assert.equal(later.code, 0, later.stderr);
    assert.equal(later.stdout, "x\nmore\n");

    const down = await mrg(["dematerialize", MZ, "--timeout", "180"]);
    assert.equal(down.code, 0, down.stderr + down.stdout);
    assert.equal((await mrg(["xdc", "delete", XDC])).code, 0);
  });
});
