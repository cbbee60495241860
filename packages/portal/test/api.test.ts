import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { phobos } from "@merge/facility-model";
import { answer, apiError, chainXir, type Harness, startHarness } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

describe("accounts and projects", () => {
  test("registration makes a pending account with a personal project and home directory; activation lets it in", async () => {
    await h.anon.register({ name: "carol", email: "carol@example.org", password: "carol-password" });
    // Before activation the right password fails like a wrong one: nothing tells the account's state.
    const denied = await apiError(h.anon.login("carol", "carol-password"));
    const wrong = await apiError(h.anon.login("carol", "not-the-password"));
    assert.equal(denied.status, 401);
    assert.deepEqual(answer(denied), answer(wrong));
    assert.ok(existsSync(join(h.dataDir, "home", "carol")));
    assert.ok(existsSync(join(h.dataDir, "proj", "carol")));
    await h.admin.setUserState("carol", "active");
    const carol = await h.anon.login("carol", "carol-password");
    assert.match(carol.token, /^mrg_/);
    const u = await h.admin.user("carol");
    assert.equal(u.state, "active");
    assert.equal((u as Record<string, unknown>).passwordHash, undefined);
  });

  test("projects: create, members, delete removes the project directory", async () => {
    const dave = await h.user("dave");
    const p = await dave.createProject({ name: "lab", visibility: "private" });
    assert.equal(p.creator, "dave");
    assert.ok(existsSync(join(h.dataDir, "proj", "lab")));
    await h.user("erin");
    await dave.addMember("lab", "erin", "maintainer");
    const members = await dave.members("lab");
    assert.deepEqual(members.map((m) => `${m.user}:${m.role}`).sort(), ["dave:creator", "erin:maintainer"]);
    await dave.deleteProject("lab");
    assert.ok(!existsSync(join(h.dataDir, "proj", "lab")));
    assert.equal((await apiError(dave.project("lab"))).status, 404);
  });

  test("a user name and a project name cannot collide", async () => {
    const fay = await h.user("fay");
    const e = await apiError(fay.createProject({ name: "dave" }));
    assert.equal(e.status, 409);
  });

  test("API tokens and SSH keys belong to their user", async () => {
    const gus = await h.user("gus");
    const t = await gus.createToken("gus", "ci");
    const viaToken = new (gus.constructor as typeof import("../src/client/index.ts").PortalClient)(h.url, t.token);
    assert.equal((await viaToken.whoami()).name, "gus");
    const key = `ssh-ed25519 ${Buffer.alloc(51, 7).toString("base64")} gus@laptop`;
    const k = await gus.addKey("gus", key);
    assert.equal((await gus.keys("gus")).length, 1);
    const hal = await h.user("hal");
    assert.equal((await apiError(hal.keys("gus"))).status, 403);
    // Other users see an account, not its email; the owner and administrators do.
    assert.equal((await hal.user("gus")).email, "");
    assert.equal((await gus.user("gus")).email, "gus@example.org");
    assert.equal((await h.admin.user("gus")).email, "gus@example.org");
    await gus.deleteKey("gus", k.fingerprint);
    await gus.deleteToken("gus", t.record.id);
    assert.equal((await apiError(viaToken.whoami())).status, 401);
  });
});

describe("experiments, revisions and realizations", () => {
  test("push XIR, list revisions, realize, accept, relinquish", async () => {
    const ivy = await h.user("ivy");
    await ivy.createExperiment("ivy", { name: "chain" });
    const bad = await ivy.push("ivy", "chain", "{not json", "xir");
    assert.equal(bad.status, "error");
    assert.match(bad.errors[0]?.message ?? "", /not valid JSON/);
    const rev = await ivy.push("ivy", "chain", chainXir("chain", 2), "xir");
    assert.equal(rev.number, 2);
    assert.equal(rev.status, "compiled");
    assert.equal(rev.nodes, 2);
    const detail = await ivy.revision("ivy", "chain", 2);
    assert.equal((detail.xir as { name: string }).name, "chain");
    assert.deepEqual(
      (await ivy.revisions("ivy", "chain")).map((r) => r.number),
      [1, 2],
    );
    // Realizing a revision that did not compile says so.
    assert.equal((await apiError(ivy.realize("ivy", "chain", { name: "r0", revision: 1 }))).status, 422);

    const r = await ivy.realize("ivy", "chain", { name: "r1" });
    assert.equal(r.state, "pending", JSON.stringify(r.diagnostics));
    assert.equal(r.id, "r1.chain.ivy");
    assert.ok(r.resources.length >= 2);
    const held = await h.admin.resources({ allocated: true });
    assert.ok(held.some((x) => x.holders.some((y) => y.realization === "r1.chain.ivy")));
    // Per resource: what is used of its cores and memory, and whether room is left.
    for (const x of held) {
      const mine = x.holders.some((y) => y.realization === "r1.chain.ivy");
      if (!mine) continue;
      assert.ok(x.cores.used > 0 && x.cores.used <= x.cores.total, JSON.stringify(x));
      assert.ok(x.memory.used > 0 && x.memory.used <= x.memory.total, JSON.stringify(x));
      if (x.state === "whole") assert.deepEqual([x.cores.used, x.memory.used], [x.cores.total, x.memory.total]);
      else {
        const room = x.cores.used < x.cores.total && x.memory.used < x.memory.total;
        assert.equal(x.state, room ? "shared" : "full", JSON.stringify(x));
      }
    }
    // Others see that a resource is taken and how much, not by whom; usage is for administrators.
    const seen = await (await h.user("ozzy")).resources({ allocated: true });
    assert.ok(seen.length > 0 && seen.every((x) => x.holders.length === 0 && x.otherHolders > 0));
    assert.deepEqual(
      seen.map((x) => [x.id, x.state, x.cores.used]),
      held.map((x) => [x.id, x.state, x.cores.used]),
    );
    assert.ok(
      held.every((x) => x.otherHolders === 0),
      "administrators see every holder by name",
    );
    assert.equal((await apiError((await h.user("ozzy2")).usage())).status, 403);
    const usage = await h.admin.usage();
    assert.ok((usage.byUser.ivy?.resources ?? 0) >= 1);
    const acc = await ivy.accept("ivy", "chain", "r1");
    assert.equal(acc.state, "accepted");
    // Held for the policy's default lease (7 days), counted from the accept.
    assert.ok(acc.accepted && acc.expires);
    assert.equal(Date.parse(acc.expires) - Date.parse(acc.accepted), 7 * 86_400_000);
    assert.equal((await apiError(ivy.reject("ivy", "chain", "r1"))).status, 409);
    // An experiment with realizations cannot be deleted.
    assert.equal((await apiError(ivy.deleteExperiment("ivy", "chain"))).status, 409);
    await ivy.relinquish("ivy", "chain", "r1");
    const free = await h.admin.resources({ allocated: true });
    assert.ok(!free.some((x) => x.holders.some((y) => y.realization === "r1.chain.ivy")));
    await ivy.deleteExperiment("ivy", "chain");
  });

  test("push TypeScript and Python models: compiled in a child process, errors reported", async () => {
    const kit = await h.user("kit");
    await kit.createExperiment("kit", { name: "hello" });
    const source = readFileSync(new URL("../../../examples/hello.ts", import.meta.url), "utf8");
    const rev = await kit.push("kit", "hello", source, "ts", "hello.ts");
    assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
    assert.equal(rev.nodes, 2);
    const broken = `${source}\nthrow new Error("boom at the end");\n`;
    const bad = await kit.push("kit", "hello", broken, "ts", "hello.ts");
    assert.equal(bad.status, "error");
    assert.match(bad.errors.map((e) => e.message).join("\n"), /boom at the end/);
    const py = readFileSync(new URL("../../../examples/python/hello-world.py", import.meta.url), "utf8");
    const pyRev = await kit.push("kit", "hello", py, "py", "hello-world.py");
    assert.equal(pyRev.status, "compiled", JSON.stringify(pyRev.errors));
    assert.equal(pyRev.lang, "py");
    const c = await kit.compile(source, "ts");
    assert.equal(c.status, "compiled");
    assert.equal((await kit.experiment("kit", "hello")).revisions, 3);
  });

  test("an unsatisfiable experiment gets a diagnosis, not a reservation", async () => {
    const jan = await h.user("jan");
    await jan.createExperiment("jan", { name: "huge" });
    const xir = JSON.parse(chainXir("huge", 2));
    xir.nodes[0].constraints = [{ prop: "memory.capacity", op: ">=", value: 47 * 1024 ** 4 }];
    await jan.push("jan", "huge", JSON.stringify(xir), "xir");
    const r = await jan.realize("jan", "huge", { name: "r1" });
    assert.equal(r.state, "failed");
    assert.ok(r.diagnostics.length > 0);
    assert.deepEqual(r.resources, []);
    await jan.relinquish("jan", "huge", "r1");
  });
});

describe("facilities", () => {
  test("register with endpoint and certificate; activation state; bad models and certificates are refused", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "merge-cert-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=deimos",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    const certificate = readFileSync(join(dir, "cert.pem"), "utf8");
    const model = phobos({ name: "deimos" });
    const bad = await apiError(
      h.admin.registerFacility({ name: "deimos", endpoint: "https://127.0.0.1:6001", model, certificate: "nope" }),
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.field, "certificate");
    const wrongName = await apiError(
      h.admin.registerFacility({ name: "mars", endpoint: "https://127.0.0.1:6001", model }),
    );
    assert.equal(wrongName.field, "model.name");
    const broken = await apiError(
      h.admin.registerFacility({ name: "deimos", endpoint: "https://127.0.0.1:6001", model: { name: "deimos" } }),
    );
    assert.equal(broken.field, "model");
    const f = await h.admin.registerFacility({
      name: "deimos",
      endpoint: "https://127.0.0.1:6001",
      model,
      certificate,
      state: "inactive",
    });
    assert.equal(f.state, "inactive");
    assert.ok(f.certificateExpires !== null && Date.parse(f.certificateExpires) > Date.now() + 29 * 86400_000);
    // Its resources are listed whatever its state (inactive ones are only left out of realization).
    assert.ok((await h.admin.resources({ facility: "deimos" })).length > 0);
    assert.equal((await h.admin.updateFacility("deimos", { state: "active" })).state, "active");
    await h.admin.deleteFacility("deimos");
    assert.equal((await apiError(h.admin.facility("deimos"))).status, 404);
  });
});

describe("openapi and health", () => {
  test("OpenAPI 3.1 lists the routes; health answers without a token", async () => {
    const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.paths["/projects/{project}/experiments/{experiment}/realizations"]);
    const health = await h.anon.health();
    assert.equal(health.status, "ok");
    assert.equal(health.store, "sqlite");
    assert.equal((await fetch(`${h.url}/docs/`)).status, 200);
  });
});
