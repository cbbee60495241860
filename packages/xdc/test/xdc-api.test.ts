// XDCs as portal objects, for real: the portal's API and policy, `mrg xdc`, and the XDC host making and
// removing real containers (root: network namespaces, overlayfs, sshd from the Debian image).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { certFiles, loadTls } from "@merge/facility";
import { imageCache } from "@merge/facility/linux";
import { closeThenRemove } from "@merge/facility/testing";
import { PortalClient } from "@merge/portal/client";
import { XdcHostClient } from "../src/index.ts";
import { mrg, startXdcStack, type XdcStack } from "./fixture.ts";

const root = process.getuid?.() === 0;
const image = existsSync(join(imageCache(), "bookworm", "usr/sbin/sshd"));
const skip = !root ? "needs root" : !image ? "needs the Debian image (scripts/setup.sh)" : false;

async function refused(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { status: number; message: string };
  }
  throw new Error("expected a refusal, the call succeeded");
}

describe("XDCs through the portal", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "xdc-api-"));
  let s: XdcStack;
  let alice: PortalClient;
  let bob: PortalClient;
  let carol: PortalClient;

  before(async () => {
    s = await startXdcStack(tmp);
    alice = await s.user("alice");
    bob = await s.user("bob");
    carol = await s.user("carol");
    await alice.createProject({ name: "myproj" });
    await alice.addMember("myproj", "bob");
  });
  after(() => closeThenRemove(tmp, s));

  test("a maintainer creates an XDC: a container with the members as accounts, their homes and the project", async () => {
    const x = await alice.createXdc("myproj", { name: "x0" });
    assert.equal(x.id, "x0.myproj");
    assert.equal(x.hostname, "x0-myproj");
    assert.equal(x.state, "running");
    assert.equal(x.creator, "alice");
    const ids = await s.host.exec("x0.myproj", ["sh", "-c", "hostname; id -u alice; id -u bob; id -nG bob"]);
    assert.equal(ids.code, 0, ids.stderr);
    const [hostname, aliceUid, bobUid, bobGroups] = ids.stdout.trim().split("\n");
    assert.equal(hostname, "x0-myproj");
    assert.ok(Number(aliceUid) >= 20000 && Number(bobUid) >= 20000 && aliceUid !== bobUid);
    assert.match(bobGroups as string, /\bmyproj\b/);
    // /home/<user> and /proj/<project> are the portal's directories, owned by the user and the project.
    const w = await s.host.exec("x0.myproj", [
      "runuser",
      "-u",
      "bob",
      "--",
      "sh",
      "-c",
      "echo hi > /home/bob/f && echo p > /proj/myproj/g",
    ]);
    assert.equal(w.code, 0, w.stderr);
    const home = join(tmp, "portal", "home", "bob", "f");
    assert.equal(statSync(home).uid, Number(bobUid));
    assert.ok(existsSync(join(tmp, "portal", "proj", "myproj", "g")));
    // bob may not write alice's home
    const denied = await s.host.exec("x0.myproj", ["runuser", "-u", "bob", "--", "sh", "-c", "echo x > /home/alice/f"]);
    assert.notEqual(denied.code, 0);
  });

  test("members list and show; only maintainers create and delete; outsiders see nothing (404)", async () => {
    assert.deepEqual(
      (await bob.xdcs("myproj")).map((x) => x.id),
      ["x0.myproj"],
    );
    assert.equal((await bob.xdc("myproj", "x0")).address, (await alice.xdc("myproj", "x0")).address);
    assert.deepEqual(
      (await bob.allXdcs()).map((x) => x.id),
      ["x0.myproj"],
    );
    let e = await refused(bob.createXdc("myproj", { name: "x1" }));
    assert.equal(e.status, 403);
    assert.match(e.message, /bob may not create xdc/);
    e = await refused(bob.deleteXdc("myproj", "x0"));
    assert.equal(e.status, 403);
    // carol is no member of the private project: every route answers as if it did not exist
    for (const call of [
      () => carol.xdcs("myproj"),
      () => carol.xdc("myproj", "x0"),
      () => carol.createXdc("myproj", { name: "x2" }),
      () => carol.deleteXdc("myproj", "x0"),
    ]) {
      e = await refused(call());
      assert.equal(e.status, 404);
      assert.match(e.message, /project 'myproj' does not exist/);
    }
    assert.deepEqual(await carol.allXdcs(), []);
    e = await refused(alice.createXdc("myproj", { name: "x0" }));
    assert.equal(e.status, 409);
    e = await refused(alice.createXdc("myproj", { name: "X-0" }));
    assert.equal(e.status, 400);
    assert.match(e.message, /name/);
    e = await refused(alice.xdc("myproj", "nope"));
    assert.equal(e.status, 404);
    assert.match(e.message, /XDC 'nope.myproj' does not exist/);
  });

  test("a member added later gets an account; one removed loses it", async () => {
    const dave = await s.user("dave");
    const synced = s.synced();
    await alice.addMember("myproj", "dave");
    await synced;
    assert.equal((await s.host.exec("x0.myproj", ["id", "-u", "dave"])).code, 0);
    assert.equal((await dave.xdcs("myproj")).length, 1);
    const again = s.synced();
    await alice.removeMember("myproj", "dave");
    await again;
    assert.notEqual((await s.host.exec("x0.myproj", ["id", "-u", "dave"])).code, 0);
  });

  test("a frozen account is no account in the XDC until it is active again", async () => {
    let synced = s.synced();
    await s.admin.setUserState("bob", "frozen");
    await synced;
    assert.notEqual((await s.host.exec("x0.myproj", ["id", "-u", "bob"])).code, 0);
    synced = s.synced();
    await s.admin.setUserState("bob", "active");
    await synced;
    assert.equal((await s.host.exec("x0.myproj", ["id", "-u", "bob"])).code, 0);
    // freezing ended bob's tokens: he signs in again
    bob = new PortalClient(s.portal.url, (await new PortalClient(s.portal.url).login("bob", "pw-bob-secret")).token);
  });

  test("mrg xdc new, list, show and delete; usage errors say what a name looks like", async () => {
    const token = alice.token as string;
    const made = await mrg(s.portal.url, token, ["xdc", "new", "x1.myproj", "--json"]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((JSON.parse(made.stdout) as { hostname: string }).hostname, "x1-myproj");
    const listed = await mrg(s.portal.url, token, ["xdc", "list", "--json"]);
    assert.deepEqual((JSON.parse(listed.stdout) as { id: string }[]).map((x) => x.id).sort(), [
      "x0.myproj",
      "x1.myproj",
    ]);
    const shown = await mrg(s.portal.url, token, ["xdc", "show", "x1.myproj"]);
    assert.match(shown.stdout, /x1-myproj/);
    const bad = await mrg(s.portal.url, token, ["xdc", "new", "x1"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected name\.project/);
    const byBob = await mrg(s.portal.url, bob.token as string, ["xdc", "delete", "x1.myproj"]);
    assert.equal(byBob.code, 1);
    assert.match(byBob.stderr, /may not delete xdc/);
    const del = await mrg(s.portal.url, token, ["xdc", "delete", "x1.myproj"]);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(await s.host.leftovers("x1.myproj"), []);
  });

  test("the XDC host answers only the portal's certificate", async () => {
    const noCert = await new Promise<string>((resolve) => {
      const req = request(`${s.service.url}/xdcs`, { ca: loadTls(certFiles(s.certs, "portal")).ca }, () =>
        resolve("answered"),
      );
      req.on("error", (e) => resolve(e.message));
      req.end();
    });
    assert.notEqual(noCert, "answered");
    // The host's own (commander) certificate is of the same CA but not the portal's role.
    const wrongRole = new XdcHostClient(s.service.url, loadTls(certFiles(s.certs, "commander")));
    const e = await refused(wrongRole.list());
    assert.equal(e.status, 403);
    const bad = new XdcHostClient(s.service.url, loadTls(certFiles(s.certs, "portal")));
    const input = await refused(
      bad.create({ id: "x9.myproj", project: "other", gid: 30000, accounts: [], jupyter: false }),
    );
    assert.equal(input.status, 400);
    assert.match(input.message, /project: 'other' is not the project of x9.myproj/);
  });

  test("deleting a project deletes its XDCs", async () => {
    await alice.createProject({ name: "short" });
    await alice.createXdc("short", { name: "t0" });
    assert.equal(s.host.status("t0.short")?.state, "running");
    await alice.deleteProject("short");
    // A sync that began before the deletion was stored may still see the project: wait for one after it.
    await s.synced();
    assert.equal(s.host.status("t0.short"), undefined);
    assert.deepEqual(await s.host.leftovers("t0.short"), []);
    assert.deepEqual(
      (await alice.allXdcs()).map((x) => x.id),
      ["x0.myproj"],
    );
  });

  test("delete leaves no container, namespace, interface, process, mount or directory", async () => {
    const before = s.host.status("x0.myproj");
    assert.equal(before?.state, "running");
    await alice.deleteXdc("myproj", "x0");
    assert.deepEqual(await s.host.leftovers("x0.myproj"), []);
    assert.deepEqual(await alice.xdcs("myproj"), []);
    // the files stay: /home and /proj are the portal's
    assert.ok(existsSync(join(tmp, "portal", "proj", "myproj", "g")));
  });
});
