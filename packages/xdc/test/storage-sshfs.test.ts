// The portal's storage on another machine, for real: the SFTP-only storage server (sshd in
// its own mount namespace, chrooted to home/ and proj/) and a host mounting it with sshfs
// (FUSE) with a key pair it made, the server's host key pinned. Files go both ways with the
// portal's uids; the chroot shows nothing but home and proj; a project volume mounted after
// the server started shows through; a key the portal did not authorize mounts nothing;
// two users writing through the mount: each one's files are theirs on the portal (bindfs
// over sshfs), neither writes the other's home or files nor gives a file away;
// unmount and stop leave no mount or process. Needs root, /dev/fuse, sshfs, bindfs and sshd.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
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
import { freePort, mountsUnder, sshfsSkip as skip } from "./fixture.ts";

describe("the portal's storage over sshfs", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-storage-sshfs-"));
  const home = join(tmp, "portal", "home");
  const proj = join(tmp, "portal", "proj");
  // The mount point where users reach it; the host's key pair and root's own sshfs mount stay in its 0700 dir.
  const mnt = join(tmp, "shared", "storage");
  const otherMnt = join(tmp, "other-shared", "storage");
  chmodSync(tmp, 0o755);
  let server: StorageServer | undefined;
  after(async () => {
    try {
      await storageUnmount(mnt, join(tmp, "host"));
      await storageUnmount(otherMnt, join(tmp, "other"));
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
    // As the portal makes them (storage.ts): a home its user's, the project's directory setgid, the group's.
    chownSync(join(home, "alice"), 20001, 20001);
    chmodSync(join(home, "alice"), 0o750);
    chownSync(join(proj, "p1"), 0, 20002);
    chmodSync(join(proj, "p1"), 0o2770);
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

    // Two users through the mount (alice 20001, bob 20003, both in the project's group 20002).
    const as = (uid: number, script: string) =>
      spawnSync("setpriv", ["--reuid", String(uid), "--regid", String(uid), "--groups", "20002", "sh", "-c", script], {
        encoding: "utf8",
        env: { PATH: "/usr/bin:/bin" },
      });
    const ok = (uid: number, script: string) => {
      const r = as(uid, script);
      assert.equal(r.status, 0, `${uid}: ${script}: ${r.stderr}`);
    };
    ok(20001, `umask 022; echo a > ${mnt}/home/alice/a.txt; echo a > ${mnt}/proj/p1/a.txt; mkdir ${mnt}/proj/p1/ad`);
    ok(20003, `umask 022; echo b > ${mnt}/proj/p1/b.txt`);
    const owner = (f: string) => {
      const s = statSync(f);
      return [s.uid, s.gid];
    };
    assert.deepEqual(owner(join(home, "alice", "a.txt")), [20001, 20001], "alice's, on the portal");
    assert.deepEqual(owner(join(proj, "p1", "a.txt")), [20001, 20002], "alice's, the project's group");
    assert.deepEqual(owner(join(proj, "p1", "ad")), [20001, 20002]);
    assert.deepEqual(owner(join(proj, "p1", "b.txt")), [20003, 20002], "bob's");
    // Neither writes the other's: alice's home, alice's file, nor gives a file away.
    for (const script of [
      `echo b > ${mnt}/home/alice/b.txt`,
      `echo b >> ${mnt}/proj/p1/a.txt`,
      `rm -f ${mnt}/home/alice/a.txt`,
      `chown 20001 ${mnt}/proj/p1/b.txt`,
    ]) {
      const r = as(20003, script);
      assert.notEqual(r.status, 0, `bob could: ${script}`);
      assert.match(r.stderr, /Permission denied|Operation not permitted/);
    }
    assert.equal(readFileSync(join(proj, "p1", "a.txt"), "utf8"), "a\n");
    assert.ok(existsSync(join(home, "alice", "a.txt")));
    assert.deepEqual(owner(join(proj, "p1", "b.txt")), [20003, 20002]);

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
    assert.deepEqual(mountsUnder(join(tmp, "other-shared")), []);

    await storageUnmount(mnt, join(tmp, "host"));
    assert.deepEqual(mountsUnder(join(tmp, "host")), []);
    assert.deepEqual(mountsUnder(join(tmp, "shared")), []);
    const pid = server.pid as number;
    await server.stop();
    assert.equal(alive(pid), false, "the storage server's sshd is gone");
    assert.deepEqual(mountsUnder(tmp), [], "the shared bind of proj/ is undone");
    assert.ok(existsSync(join(home, "alice", "notes.txt")), "the files stay the portal's");
  });
});
