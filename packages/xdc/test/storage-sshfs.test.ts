// The portal's storage on another machine, for real: the SFTP-only storage server (sshd in
// its own mount namespace, chrooted to home/ and proj/) and a host mounting it with sshfs
// (FUSE) with a key pair it made, the server's host key pinned. Files go both ways with the
// portal's uids; the chroot shows nothing but home and proj; a project volume mounted after
// the server started shows through; a key the portal did not authorize mounts nothing;
// unmount and stop leave no mount or process. Needs root, /dev/fuse, sshfs and sshd.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { alive, storageKeyPair, storageMount, storageUnmount } from "@merge/facility/linux";
import { StorageServer } from "../src/index.ts";
import { freePort } from "./fixture.ts";

const skip =
  (process.getuid?.() !== 0 && "needs root") ||
  (!existsSync("/dev/fuse") && "no /dev/fuse") ||
  (!existsSync("/usr/bin/sshfs") && "needs sshfs (scripts/setup.sh)") ||
  (!existsSync("/usr/sbin/sshd") && "needs sshd (openssh-server)");

const mountsUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => (l.split(" ")[4] ?? "").startsWith(dir));

describe("the portal's storage over sshfs", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-storage-sshfs-"));
  const home = join(tmp, "portal", "home");
  const proj = join(tmp, "portal", "proj");
  const mnt = join(tmp, "host", "storage");
  const otherMnt = join(tmp, "other", "storage");
  let server: StorageServer | undefined;
  after(async () => {
    try {
      await storageUnmount(mnt);
      await storageUnmount(otherMnt);
      await server?.stop();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("mounted with the host's own key; files both ways; nothing left", { timeout: 60_000 }, async () => {
    mkdirSync(join(home, "alice"), { recursive: true });
    mkdirSync(join(proj, "p1"), { recursive: true });
    writeFileSync(join(proj, "p1", "data.txt"), "from the portal\n");
    chownSync(join(proj, "p1", "data.txt"), 20001, 20002);
    server = await StorageServer.start({
      dir: join(tmp, "storage"),
      homeRoot: home,
      projRoot: proj,
      port: await freePort(),
    });
    const remote = { host: server.host, port: server.port, knownHost: server.knownHost() };

    // Not authorized yet: the mount fails, naming the server.
    await assert.rejects(
      storageMount(join(tmp, "host"), remote, mnt),
      new RegExp(`mounting the portal's storage 127.0.0.1:${server.port} on ${mnt}`),
    );
    server.authorize([await storageKeyPair(join(tmp, "host"))]);
    assert.throws(() => server?.authorize(["not a key"]), /storage host key 0: not an OpenSSH public key line/);

    await storageMount(join(tmp, "host"), remote, mnt);
    assert.deepEqual(readdirSync(mnt).sort(), ["home", "proj"], "the chroot holds home and proj only");
    assert.equal(readFileSync(join(mnt, "proj", "p1", "data.txt"), "utf8"), "from the portal\n");
    const st = statSync(join(mnt, "proj", "p1", "data.txt"));
    assert.deepEqual([st.uid, st.gid], [20001, 20002], "the portal's ids, unmapped");
    writeFileSync(join(mnt, "home", "alice", "notes.txt"), "from the host\n");
    assert.equal(readFileSync(join(home, "alice", "notes.txt"), "utf8"), "from the host\n");

    // A project volume mounted on the portal after the server started shows through (slave mounts).
    mkdirSync(join(proj, "p2"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "mrg-test-vol", join(proj, "p2")]);
    try {
      writeFileSync(join(proj, "p2", "on-volume.txt"), "v\n");
      assert.equal(readFileSync(join(mnt, "proj", "p2", "on-volume.txt"), "utf8"), "v\n");
    } finally {
      execFileSync("umount", [join(proj, "p2")]);
    }

    // Another host's key is not on the list.
    await assert.rejects(storageMount(join(tmp, "other"), remote, otherMnt), /mounting the portal's storage .*other/);
    assert.deepEqual(mountsUnder(join(tmp, "other")), []);

    await storageUnmount(mnt);
    assert.deepEqual(mountsUnder(join(tmp, "host")), []);
    const pid = server.pid as number;
    await server.stop();
    assert.equal(alive(pid), false, "the storage server's sshd is gone");
    assert.deepEqual(mountsUnder(tmp), [], "the shared bind of proj/ is undone");
    assert.ok(existsSync(join(home, "alice", "notes.txt")), "the files stay the portal's");
  });
});
