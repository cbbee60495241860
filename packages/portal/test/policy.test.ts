import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { PortalClient } from "../src/client/index.ts";
import { allows, loadPolicy, PolicyError, parsePolicy } from "../src/policy.ts";
import { answer, apiError, chainXir, type Harness, startHarness } from "./harness.ts";

let h: Harness;
let alice: PortalClient;
let bob: PortalClient;
let mallory: PortalClient;
before(async () => {
  h = await startHarness();
  alice = await h.user("alice");
  bob = await h.user("bob");
  mallory = await h.user("mallory");
  await alice.createProject({ name: "net", visibility: "private" });
  await alice.addMember("net", "bob", "member");
  await alice.createExperiment("net", { name: "secret", visibility: "private" });
  await alice.createExperiment("net", { name: "open", visibility: "public" });
  await alice.push("net", "secret", chainXir("secret", 2), "xir");
});
after(async () => {
  await h?.stop();
});

describe("policy on every route", () => {
  test("no token: 401 with what to do", async () => {
    const e = await apiError(h.anon.projects());
    assert.equal(e.status, 401);
    assert.match(e.message, /mrg login/);
    const bogus = await apiError(
      fetch(`${h.url}/projects`, {
        headers: { authorization: "Bearer mrg_aaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" },
      }).then(async (r) => {
        if (!r.ok) throw Object.assign(new Error("x"), { status: r.status, code: "" });
      }),
    );
    assert.equal(bogus.status, 401);
  });

  test("a user cannot see or change another project's private experiment", async () => {
    // To an outsider the private project and its experiments do not exist: 404, as for a made-up name.
    for (const exp of ["secret", "open", "madeup"]) {
      for (const call of [
        () => mallory.experiment("net", exp),
        () => mallory.revisions("net", exp),
        () => mallory.push("net", exp, chainXir("secret", 2), "xir"),
        () => mallory.updateExperiment("net", exp, { visibility: "public" }),
        () => mallory.deleteExperiment("net", exp),
        () => mallory.realize("net", exp, { name: "steal" }),
      ]) {
        const e = await apiError(call());
        assert.equal(e.status, 404, `${exp}: ${e.message}`);
        assert.equal(e.message, "project 'net' does not exist");
      }
    }
    // Nor list it: the private project is invisible to outsiders.
    assert.ok(!(await mallory.projects()).some((p) => p.name === "net"));
    assert.equal((await apiError(mallory.experiments("net"))).status, 404);
    const hidden = answer(await apiError(mallory.project("net")));
    const missing = answer(await apiError(mallory.project("nope")));
    assert.deepEqual(hidden, { ...missing, message: missing.message.replace("nope", "net") });
    // The owner still sees it, and it is unchanged.
    const e = await alice.experiment("net", "secret");
    assert.equal(e.visibility, "private");
    assert.equal(e.revisions, 1);
  });

  test("a plain member sees public experiments but not another member's private one, and cannot delete the project", async () => {
    const names = (await bob.experiments("net")).map((e) => e.name);
    assert.deepEqual(names, ["open"]);
    const e = await apiError(bob.deleteProject("net"));
    assert.equal(e.status, 403);
    assert.match(e.message, /may not delete project/);
    assert.equal((await apiError(bob.addMember("net", "mallory"))).status, 403);
    assert.equal((await alice.project("net")).name, "net");
  });

  test("an inactive (pending or frozen) user can do nothing", async () => {
    const Client = bob.constructor as new (u: string, t: string) => PortalClient;
    const t = await h.admin.createToken("bob", "later");
    await h.admin.setUserState("bob", "frozen");
    // Freezing revokes the account's tokens: 401 on every call.
    const frozen = new Client(h.url, t.token);
    for (const call of [
      frozen.whoami(),
      frozen.projects(),
      frozen.experiments("net"),
      frozen.createProject({ name: "x1" }),
    ]) {
      assert.equal((await apiError(call)).status, 401);
    }
    // The right password on a frozen or pending account is answered like a wrong one.
    const right = await apiError(h.anon.login("bob", "pw-bob-secret"));
    assert.equal(right.status, 401);
    assert.deepEqual(answer(right), answer(await apiError(h.anon.login("bob", "wrong-password"))));
    await h.user("pat", { activate: false });
    const pending = await apiError(h.anon.login("pat", "pw-pat-secret"));
    assert.deepEqual(answer(pending), answer(right));
    // A token an administrator made for a pending account is valid, and the account may do nothing (403).
    const patToken = new Client(h.url, (await h.admin.createToken("pat", "early")).token);
    const inactive = await apiError(patToken.whoami());
    assert.equal(inactive.status, 403);
    assert.match(inactive.message, /waiting for an administrator/);

    await h.admin.setUserState("bob", "active");
    assert.equal((await apiError(frozen.whoami())).status, 401, "activating again does not revive old tokens");
    bob = new Client(h.url, (await h.anon.login("bob", "pw-bob-secret")).token);
    assert.equal((await bob.whoami()).name, "bob");
  });

  test("only administrators activate accounts or register facilities", async () => {
    assert.equal((await apiError(mallory.setUserState("mallory", "active", true))).status, 403);
    assert.equal(
      (await apiError(mallory.registerFacility({ name: "evil", endpoint: "https://x", model: {} }))).status,
      403,
    );
    assert.equal((await h.admin.user("mallory")).admin, false);
  });

  test("a route without an access rule stops the portal from starting", async () => {
    const { default: Fastify } = await import("fastify");
    const { installAccess } = await import("../src/access.ts");
    const app = Fastify();
    installAccess(app, h.started.portal.ctx);
    await assert.rejects(
      (async () => {
        app.get("/unguarded", async () => "x");
        await app.ready();
      })(),
      /GET \/unguarded declares no access rule/,
    );
    await app.close().catch(() => undefined);
  });
});

describe("policy file", () => {
  test("the default policy loads and says what the README says", () => {
    const p = loadPolicy();
    assert.equal(allows(p, "project", "private", "delete", new Set(["Project.Maintainer", "Project.Member"])), false);
    assert.equal(allows(p, "project", "private", "delete", new Set(["Project.Creator"])), true);
    assert.equal(allows(p, "experiment", "private", "read", new Set(["Any.Any", "Project.Member"])), false);
    assert.equal(allows(p, "experiment", "public", "read", new Set(["Any.Any"])), true);
    assert.equal(allows(p, "facility", "any", "create", new Set(["Portal.Admin"])), true);
  });

  test("bad policy files are refused with the path of the bad entry", () => {
    assert.throws(
      () => parsePolicy("experiment:\n  private:\n    read: [Project.Owner]\n", "p.yml"),
      (e: Error) => {
        assert.ok(e instanceof PolicyError);
        assert.match(e.message, /p\.yml: experiment\.private\.read: unknown role 'Project\.Owner'/);
        return true;
      },
    );
    assert.throws(() => parsePolicy("widget:\n  any: {}\n", "p.yml"), /unknown object type 'widget'/);
    assert.throws(() => parsePolicy("user:\n  any:\n    create: []\n", "p.yml"), /no rules for object type/);
    assert.throws(() => parsePolicy("[", "p.yml"), /not valid YAML/);
  });
});
