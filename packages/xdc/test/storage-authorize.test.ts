// The portal lists its facilities' storage keys at its storage server itself: a facility daemon
// started with --storage sftp://… (its own key pair, made where it runs) answers its public key
// to the portal over the facility API's mutual TLS (StorageKey); the portal's materialization
// plugin hands the keys to the storage server, and the daemon's mount follows, with no key copied
// by hand. Until then the daemon runs with its storage unmounted and refuses to bind nodes from
// it; a facility made inactive loses its key at the server. Only public keys travel (none private
// in the portal's store). A portal, its storage server, and a facility daemon process on the linux
// backend (no harbor). Needs root, /dev/fuse, sshfs, bindfs and sshd.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type FacilityProcess, spawnFacility } from "@merge/facility";
import { storageBinds } from "@merge/facility/linux";
import { skip as linuxSkip } from "@merge/facility/testing/linux";
import { phobos } from "@merge/facility-model";
import { PortalClient } from "@merge/portal/client";
import { type Started, startPortal } from "@merge/portal/main";
import { credentialsConnector, materializationPlugin } from "@merge/portal/materialize";
import { StorageServer } from "../src/index.ts";
import { freePort, mountsUnder, sshfsSkip } from "./fixture.ts";

const skip = linuxSkip || sshfsSkip;

async function until(what: string, ok: () => boolean, log: string, limit = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > limit)
      assert.fail(`${what}: not after ${limit} ms; ${log}: ${readFileSync(log, "utf8").slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the portal authorizes its facilities' storage keys", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-storage-authorize-"));
  const facDir = join(tmp, "facility");
  const storage = join(facDir, "backend", "storage");
  // Exactly there (storage-client/, root's own sshfs mount, shares the prefix).
  const mounted = () => mountsUnder(storage).some((l) => l.split(" ")[4] === storage);
  const authorized = () => readFileSync(join(tmp, "storage-server", "authorized_keys"), "utf8");
  let server: StorageServer | undefined;
  let portal: Started | undefined;
  let facility: FacilityProcess | undefined;
  after(async () => {
    try {
      await facility?.stop();
      await portal?.stop();
      await server?.stop();
      assert.deepEqual(mountsUnder(tmp), [], "no mount left");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("a facility started with --storage sftp:// mounts once the portal asked for its key", {
    timeout: 180_000,
  }, async () => {
    server = await StorageServer.start({
      dir: join(tmp, "storage-server"),
      homeRoot: join(tmp, "portal", "home"),
      projRoot: join(tmp, "portal", "proj"),
      port: await freePort(),
    });
    const model = phobos();
    portal = await startPortal({
      dataDir: join(tmp, "portal"),
      port: 0,
      seed: [{ model, endpoint: "https://127.0.0.1:6000", description: "a facility elsewhere" }],
      plugins: [
        materializationPlugin({
          connect: credentialsConnector(join(tmp, "creds")),
          storage: server,
          storagePollMs: 300,
          log: (m) => console.log(`portal: ${m}`),
        }),
      ],
    });
    const admin = new PortalClient(
      portal.url,
      (await new PortalClient(portal.url).login("admin", portal.admin.password as string)).token,
    );
    const hostKey = server.knownHost().split(" ").slice(1).join(" ");
    facility = spawnFacility({
      dir: facDir,
      model,
      backend: "linux",
      noHarbor: true,
      storage: { at: `sftp://${server.host}:${server.port}`, hostKey },
    });
    const url = await facility.ready;

    // Up, not mounted: the portal has not asked yet. Nodes are not given this machine's empty directories.
    const pub = readFileSync(join(facDir, "backend", "storage-client", "storage_ed25519.pub"), "utf8").trim();
    assert.equal(mounted(), false);
    assert.doesNotMatch(authorized(), new RegExp(pub.split(" ")[1] as string));
    assert.throws(
      () => storageBinds(storage, { project: "p1", gid: 20000, users: [] }),
      /the portal's storage is not mounted on .* yet/,
    );

    // Registered at the portal (its credentials and endpoint): the portal asks, lists, the daemon mounts.
    for (const f of ["ca.pem", "portal.pem", "portal-key.pem"])
      cpSync(join(facility.certs, f), join(tmp, "creds", model.name, f));
    await admin.updateFacility(model.name, { endpoint: url });
    await until(
      "the key listed at the storage server",
      () => authorized().includes(pub.split(" ")[1] as string),
      facility.log,
    );
    await until("the daemon's mount", mounted, facility.log);
    mkdirSync(join(tmp, "portal", "proj", "p1"), { recursive: true });
    writeFileSync(join(tmp, "portal", "proj", "p1", "x.txt"), "from the portal\n");
    assert.equal(readFileSync(join(storage, "proj", "p1", "x.txt"), "utf8"), "from the portal\n");
    assert.equal(existsSync(`${storage}.not-mounted`), false, "mounted: no marker");
    assert.match(
      readFileSync(facility.log, "utf8"),
      /the portal's storage mounted on .* with this host's key ssh-ed25519/,
    );

    // Only the public key travelled: nothing private in the portal's store.
    for (const kv of await portal.store.range("")) assert.doesNotMatch(kv.value, /PRIVATE KEY/);

    // Inactive: the portal no longer lists its key (new mounts are refused; the one made stays until it stops).
    await admin.updateFacility(model.name, { state: "inactive" });
    await until(
      "the key gone from the storage server",
      () => !authorized().includes(pub.split(" ")[1] as string),
      facility.log,
    );

    await facility.stop();
    assert.deepEqual(mountsUnder(facDir), [], "the daemon unmounts when it stops");
  });
});
