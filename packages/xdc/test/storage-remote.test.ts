// The facility daemon's --storage sftp://host:port (facility/src/linux/storage-remote.ts): the
// option's errors name what would be valid; with the storage server's host key pinned, the
// daemon's mount of the portal's storage under its data directory shows the portal's files
// (and what is written there lands on the portal) once the portal authorized the host's key,
// which the refusal names; closing leaves no mount. Needs root, /dev/fuse, sshfs, bindfs, sshd.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openStorage, parseStorageOption } from "@merge/facility/linux";
import { StorageServer } from "../src/index.ts";
import { freePort, mountsUnder, sshfsSkip as skip } from "./fixture.ts";

const mounted = (dir: string) => mountsUnder(dir).length > 0;

describe("--storage", () => {
  test("a directory, or sftp:// with the server's key; errors say what is valid", () => {
    assert.deepEqual(parseStorageOption("/srv/portal", undefined), { kind: "dir", dir: "/srv/portal" });
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm0 merge-storage";
    assert.deepEqual(parseStorageOption("sftp://10.0.0.1:2203", key), {
      kind: "sftp",
      remote: { host: "10.0.0.1", port: 2203, knownHost: "[10.0.0.1]:2203 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm0" },
    });
    assert.equal(
      (parseStorageOption("sftp://st.example:22", `[st.example]:22 ${key}`) as { remote: { knownHost: string } }).remote
        .knownHost,
      "[st.example]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm0",
    );
    assert.throws(() => parseStorageOption("sftp://10.0.0.1:2203", undefined), /needs --storage-host-key/);
    assert.throws(
      () => parseStorageOption("nfs://10.0.0.1:2049", key),
      /expected a directory or sftp:\/\/<host>:<port>/,
    );
    assert.throws(() => parseStorageOption("sftp://10.0.0.1:99999", key), /expected a directory or sftp/);
    assert.throws(
      () => parseStorageOption("sftp://10.0.0.1:22", "hello"),
      /--storage-host-key: not an OpenSSH public key/,
    );
    assert.throws(() => parseStorageOption("/srv/portal", key), /goes with --storage sftp/);
  });

  describe("mounted from the storage server", { skip }, () => {
    const tmp = mkdtempSync(join(tmpdir(), "mrg-storage-remote-"));
    const dataDir = join(tmp, "facility");
    let server: StorageServer | undefined;
    let close: (() => Promise<void>) | undefined;
    after(async () => {
      try {
        await close?.();
        await server?.stop();
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    test("refused until the portal authorizes the host's key; then the portal's files, both ways", {
      timeout: 120_000,
    }, async () => {
      mkdirSync(join(tmp, "portal", "home"), { recursive: true });
      mkdirSync(join(tmp, "portal", "proj", "p1"), { recursive: true });
      writeFileSync(join(tmp, "portal", "proj", "p1", "x.txt"), "portal\n");
      server = await StorageServer.start({
        dir: join(tmp, "server"),
        homeRoot: join(tmp, "portal", "home"),
        projRoot: join(tmp, "portal", "proj"),
        port: await freePort(),
      });
      const pub = readFileSync(join(tmp, "server", "ssh_host_ed25519_key.pub"), "utf8");
      const opt = parseStorageOption(`sftp://${server.host}:${server.port}`, pub);
      const err = await openStorage(opt, dataDir).then(
        () => undefined,
        (e: Error) => e.message,
      );
      assert.match(err ?? "", /is this host's key authorized at the portal\? ssh-ed25519 \S+ merge-storage-client/);
      assert.equal(mounted(dataDir), false);

      server.authorize([readFileSync(join(dataDir, "storage-client", "storage_ed25519.pub"), "utf8")]);
      const s = await openStorage(opt, dataDir);
      close = s.close;
      assert.equal(s.path, join(dataDir, "storage"));
      assert.equal(readFileSync(join(s.path, "proj", "p1", "x.txt"), "utf8"), "portal\n");
      writeFileSync(join(s.path, "proj", "p1", "y.txt"), "facility\n");
      assert.equal(readFileSync(join(tmp, "portal", "proj", "p1", "y.txt"), "utf8"), "facility\n");

      await s.close();
      close = undefined;
      assert.equal(mounted(dataDir), false, "nothing mounted after close");
    });
  });
});
