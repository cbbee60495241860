import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { PortalClient } from "../src/client/index.ts";
import { allows, loadPolicy, PolicyError, parsePolicy } from "../src/policy.ts";
import { apiError, chainXir, type Harness, startHarness } from "./harness.ts";

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
    assert.equal((await apiError(mallory.experiment("net", "secret"))).status, 403);
    assert.equal((await apiError(mallory.revisions("net", "secret"))).status, 403);
    assert.equal((await apiError(mallory.push("net", "secret", chainXir("secret", 2), "xir"))).status, 403);
    assert.equal((await apiError(mallory.updateExperiment("net", "secret", { visibility: "public" }))).status, 403);
    assert.equal((await apiError(mallory.deleteExperiment("net", "secret"))).status, 403);
    assert.equal((await apiError(mallory.realize("net", "secret", { name: "steal" }))).status, 403);
    // Nor list it: the private project is invisible to outsiders.
    assert.ok(!(await mallory.projects()).some((p) => p.name === "net"));
    assert.equal((await apiError(mallory.experiments("net"))).status, 403);
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
    const t = await h.admin.createToken("bob", "later");
    await h.admin.setUserState("bob", "frozen");
    const frozen = new (bob.constructor as new (u: string, t: string) => PortalClient)(h.url, t.token);
    for (const call of [
      frozen.whoami(),
      frozen.projects(),
      frozen.experiments("net"),
      frozen.createProject({ name: "x1" }),
    ]) {
      const e = await apiError(call);
      assert.equal(e.status, 403);
      assert.match(e.message, /frozen/);
    }
    assert.equal((await apiError(h.anon.login("bob", "pw-bob-secret"))).status, 403);
    await h.admin.setUserState("bob", "active");
    assert.equal((await frozen.whoami()).name, "bob");

    await h.user("pat", { activate: false });
    assert.equal((await apiError(h.anon.login("pat", "pw-pat-secret"))).status, 403);
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
