// Quotas across hosts: nodes on a host that reaches the portal's storage through the storage
// server (sshfs under bindfs, as a facility on another machine mounts it) hit the project's and
// the home's limit cleanly: a write past it fails, the node and everything else go on working,
// and deleting frees the space. A portal with 8 MiB project and home quotas, its storage server,
// and a facility on the linux backend whose nodes bind from the sshfs mount, in this process.
// Needs root, loop devices, /dev/fuse, sshfs, bindfs, sshd and network namespaces.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LINUX_PAIR as MODEL } from "@merge/e2e/portal-stack";
import { storageKeyPair, storageMount, storageUnmount } from "@merge/facility/linux";
import { skip as linuxSkip } from "@merge/facility/testing/linux";
import { StorageServer } from "../src/index.ts";
import { type AttachStack, startAttachStackWithE1 } from "./attach-stack.ts";
import { freePort, mountsUnder, policyWithQuota, sshfsSkip } from "./fixture.ts";

const skip = linuxSkip || sshfsSkip || (!existsSync("/dev/loop-control") && "no loop devices");
const MiB = 1024 * 1024;

describe("quotas on a node of a remote host (sshfs)", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-remote-quota-"));
  const proj = `p${randomBytes(4).toString("hex")}`;
  const MZ = `r1.e1.${proj}`;
  // The remote host's mount of the portal's storage (its key pair and root's sshfs under `client`).
  const client = join(tmp, "remote-host");
  const mnt = join(tmp, "remote-storage");
  let server: StorageServer | undefined;
  let a: AttachStack | undefined;
  const onNode = (node: string, script: string) =>
    (a as AttachStack).mrg(["exec", node, MZ, "--", "su", "admin", "-s", "/bin/sh", "-c", script]);

  before(async () => {
    server = await StorageServer.start({
      dir: join(tmp, "storage-server"),
      homeRoot: join(tmp, "portal", "home"),
      projRoot: join(tmp, "portal", "proj"),
      port: await freePort(),
    });
    server.authorize([await storageKeyPair(client)]);
    await storageMount(client, { host: server.host, port: server.port, knownHost: server.knownHost() }, mnt);
    // The volumes are mounted by the portal after the server started: they reach it as shared mounts.
    a = await startAttachStackWithE1(tmp, proj, MODEL, {
      policyFile: policyWithQuota(tmp, "  project:\n    default: 8MiB\n  home:\n    default: 8MiB\n"),
      storage: mnt,
    });
  });

  after(async () => {
    try {
      await a?.close();
      await storageUnmount(mnt, client);
      await server?.stop();
      assert.deepEqual(mountsUnder(tmp), [], "no mount left");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("a write past the project's or the home's quota fails; the rest works; deleting frees it", {
    timeout: 300_000,
  }, async () => {
    const up = await (a as AttachStack).mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    // The node's /proj/<p> is the remote host's bindfs mount, not the portal's volume itself.
    const m = await (a as AttachStack).mrg(["exec", "a", MZ, "--", "grep", `/proj/${proj}`, "/proc/mounts"]);
    assert.match(m.stdout, /fuse/, m.stdout + m.stderr);

    for (const dir of [`/proj/${proj}`, "/home/admin"]) {
      const full = await onNode("a", `dd if=/dev/zero of=${dir}/big bs=1k count=16384`);
      assert.notEqual(full.code, 0, `${dir}: a write past the quota fails`);
      // SFTP (version 3, what OpenSSH speaks) has no "no space" status: the server answers a failure,
      // which sshfs gives the writer as EIO. statfs through the mount shows why: the volume is full.
      assert.match(full.stderr, /Input\/output error/);
      const df = await onNode("a", `stat -f -c '%b %a %S' ${dir}`);
      const [blocks = 0, free = 0, bsize = 0] = df.stdout.trim().split(" ").map(Number);
      assert.ok(
        blocks * bsize > 4 * MiB && blocks * bsize <= 8 * MiB && free * bsize < MiB,
        `${dir}: statfs: ${df.stdout}${df.stderr}`,
      );
      const onPortal = join(tmp, "portal", dir.replace(/^\//, ""), "big");
      assert.ok(statSync(onPortal).size <= 8 * MiB, `${onPortal} stayed within the quota`);
      // The node, the other directory and the other node go on working.
      const other = dir === "/home/admin" ? `/proj/${proj}` : "/home/admin";
      const rest = await onNode("b", `echo ok > ${other}/ok.txt && cat ${other}/ok.txt && echo ok > /tmp/ok.txt`);
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal(rest.stdout, "ok\n");
      // Deleting on the other node frees the space for the first.
      assert.equal((await onNode("b", `rm ${dir}/big`)).code, 0);
      const again = await onNode(
        "a",
        `dd if=/dev/zero of=${dir}/again bs=1k count=2048 && rm ${dir}/again ${other}/ok.txt`,
      );
      assert.equal(again.code, 0, `${dir}: writes again after the deletion: ${again.stderr}`);
    }

    const down = await (a as AttachStack).mrg(["dematerialize", MZ, "--timeout", "180"]);
    assert.equal(down.code, 0, down.stderr + down.stdout);
  });
});
