/**
 * The web UI end to end, in Debian's chromium (playwright-core, never a
 * downloaded browser): builds the UI with Vite, starts a real portal (sqlite
 * store in a temp dir, port 0) serving it, makes a user, a project experiment
 * and a pushed model through the API, then in the browser signs in through the
 * portal's OIDC pages (authorization code + PKCE), opens the experiment, checks
 * the sigma topology, realizes and accepts; then signs out, signs in as the
 * administrator and activates a pending account from the dashboard.
 * Screenshots land in /tmp/merge-web-*.png.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { closeThenRemove } from "@merge/facility/testing";
import { phobos } from "@merge/facility-model";
import { PortalClient } from "@merge/portal";
import { type Started, startPortal } from "@merge/portal/main";
import { credentialsConnector, materializationPlugin } from "@merge/portal/materialize";
import type { BrowserContext } from "playwright-core";
import type { TopologyHook } from "../app/topology.ts";
import { builtUi } from "./built-ui.ts";
import { launchChromium, onPage, pageErrors, signIn, skipWithoutChromium } from "./chromium.ts";
import { campus } from "./sample-xir.ts";

const skip = skipWithoutChromium;

let base: string;
let started: Started | undefined;
let browser: BrowserContext | undefined;
let alice: PortalClient;
let admin: PortalClient;
const ALICE_PW = "alice-secret-pw";

before(async () => {
  if (skip) return;
  base = await mkdtemp(join(tmpdir(), "merge-web-test-"));
  const webUi = await builtUi(base);
  started = await startPortal({
    dataDir: join(base, "data"),
    port: 0,
    seed: [{ model: phobos(), endpoint: "https://127.0.0.1:6000", description: "demo facility" }],
    // No facility runs here, and no credentials for one exist: materializations stay undelivered, and say so.
    plugins: [
      webUi,
      materializationPlugin({ connect: credentialsConnector(join(base, "facility-credentials")), backoffMs: 60_000 }),
    ],
  });
  const ui = await fetch(`${started.url}/ui/`);
  if (ui.status !== 200) {
    throw new Error(
      `the portal does not serve the UI (GET /ui/ → ${ui.status}): buildPortal must register its \`plugins\` option (app.register(p, { ctx }))`,
    );
  }
  const anon = new PortalClient(started.url);
  admin = new PortalClient(started.url, (await anon.login("admin", started.admin.password as string)).token);
  await anon.register({ name: "alice", email: "alice@example.org", password: ALICE_PW });
  await admin.setUserState("alice", "active");
  await anon.register({ name: "bob", email: "bob@example.org", password: "bob-secret-pw" });
  alice = new PortalClient(started.url, (await anon.login("alice", ALICE_PW)).token);
  await alice.createExperiment("alice", { name: "demo", description: "two clients, a router and a server" });
  const source = await readFile(new URL("../../../examples/demo.ts", import.meta.url), "utf8");
  const rev = await alice.push("alice", "demo", source, "ts", "demo.ts");
  assert.equal(rev.status, "compiled", JSON.stringify(rev.errors));
  await alice.createExperiment("alice", { name: "campus" });
  const big = await alice.push("alice", "campus", JSON.stringify(campus(1000)), "xir");
  assert.equal(big.status, "compiled", JSON.stringify(big.errors));

  browser = await launchChromium(join(base, "profile"));
});

after(() => closeThenRemove(base, browser, started));

/** The materialization status as the API reports it (the typed client has no call for it yet). */
async function aliceMaterialization(): Promise<{ status: string }> {
  const res = await fetch(
    `${(started as Started).url}/projects/alice/experiments/demo/realizations/r1/materialization`,
    { headers: { authorization: `Bearer ${alice.token}` } },
  );
  assert.equal(res.status, 200);
  return (await res.json()) as { status: string };
}

test("sign in, see the topology, realize and accept", { skip, timeout: 180_000 }, async () => {
  const url = (started as Started).url;
  await onPage(browser as BrowserContext, "/tmp/merge-web-failure.png", async (page, problems) => {
    const res = await page.goto(`${url}/ui/projects/alice/experiments/demo`);
    assert.equal(
      res?.status(),
      200,
      "the portal does not serve the UI: buildPortal must register its `plugins` option (app.register(p, { ctx }))",
    );
    assert.match(res?.headers()["content-security-policy"] ?? "", /default-src 'self'/);
    await signIn(page, "alice", ALICE_PW);
    // Back where the user was going, signed in; the token is in sessionStorage, not in cookies or localStorage.
    assert.equal(new URL(page.url()).pathname, "/ui/projects/alice/experiments/demo");
    const stored = await page.evaluate(() => ({ s: sessionStorage.getItem("merge.session"), l: localStorage.length }));
    assert.ok(stored.s?.includes("token"));
    assert.equal(stored.l, 0);

    // The revision stack and the topology of the newest revision.
    await page.getByTestId("revisions").getByText("#1").waitFor();
    const topo = page.locator("[data-testid=topology][data-state=rendered]");
    await topo.waitFor({ timeout: 30_000 });
    assert.equal(await topo.getAttribute("data-nodes"), "4");
    assert.equal(await topo.getAttribute("data-lans"), "1");
    assert.equal(await topo.getAttribute("data-edges"), "4"); // 3 LAN spokes + the wan link
    assert.ok((await topo.locator("canvas").count()) > 0, "sigma drew canvases");
    const hook: Omit<TopologyHook, "locate"> | undefined = await page.evaluate(() => {
      const t = window.mergeTopology;
      return t && { nodes: t.nodes, lans: t.lans, edges: t.edges, experiment: t.experiment };
    });
    assert.deepEqual(hook, { nodes: 4, lans: 1, edges: 4, experiment: "demo" });
    await page.screenshot({ path: "/tmp/merge-web-experiment.png" });

    // Hovering the server shows its constraints in the user's units and its address.
    const at = await page.evaluate(() => window.mergeTopology?.locate("server"));
    assert.ok(at, "server is drawn");
    await page.mouse.move(at.x, at.y);
    const hover = page.getByTestId("topology-hover");
    await hover.waitFor();
    const text = (await hover.textContent()) ?? "";
    assert.match(text, /server/);
    assert.match(text, /proc\.cores >= 2/);
    assert.match(text, /memory\.capacity >= 2 GiB/);
    assert.match(text, /10\.0\.0\.10\/30/);
    await page.screenshot({ path: "/tmp/merge-web-hover.png" });
    await page.mouse.move(5, 5);

    // A bad realization name: the portal's message is shown, nothing is created.
    await page.getByLabel("realization name").fill("Bad-Name");
    await page.getByRole("button", { name: /Realize #1/ }).click();
    await page.getByRole("alert").filter({ hasText: "not a valid name" }).waitFor();
    assert.deepEqual(await alice.realizations("alice", "demo"), []);

    // Realize: lands on the realization, pending, with a resource for every node.
    await page.getByLabel("realization name").fill("r1");
    await page.getByRole("button", { name: /Realize #1/ }).click();
    await page.waitForURL(/\/realizations\/r1$/);
    await page.locator("[data-testid=realization][data-state=pending]").waitFor();
    const rows = page.getByTestId("node-resources").locator("tbody tr");
    assert.equal(await rows.count(), 4);
    const nodesShown = (await rows.locator("td:first-child").allInnerTexts()).sort();
    assert.deepEqual(nodesShown, ["c0", "c1", "router", "server"]);
    const rlz = await alice.realization("alice", "demo", "r1");
    const resourcesShown = await rows.locator("td:nth-child(3)").allInnerTexts();
    const embedding = rlz.realization as { nodes: { resource: string }[] };
    assert.deepEqual(resourcesShown.sort(), embedding.nodes.map((n) => n.resource).sort());

    await page.getByRole("button", { name: "Accept" }).click();
    await page.locator("[data-testid=realization][data-state=accepted]").waitFor();
    assert.equal((await alice.realization("alice", "demo", "r1")).state, "accepted");
    await page.getByRole("button", { name: "Relinquish" }).waitFor();

    // The lease: the policy's default (7 days), the time left, and extending it by a day from the page.
    assert.match((await page.getByTestId("lease-left").textContent()) ?? "", /^6d23h|^7d$/);
    await page.getByRole("button", { name: "Extend by 24h" }).click();
    await page
      .getByTestId("lease-left")
      .filter({ hasText: /^(7d23h|8d)$/ })
      .waitFor();
    assert.equal((await alice.history("alice", "demo")).at(-1)?.kind, "lease-extended");
    // A notice the portal sends (here: stored through its notifier) shows in the header.
    await started!.portal.ctx.notifier.notify("alice", {
      kind: "lease-warning",
      realization: "r1.demo.alice",
      message: "r1.demo.alice expires soon",
    });
    await page.reload();
    await page.getByTestId("notices").filter({ hasText: "Notices (1)" }).waitFor();
    await page.getByTestId("notices").click();
    assert.match((await page.getByTestId("notice-list").textContent()) ?? "", /r1\.demo\.alice expires soon/);

    // Materialize: the portal takes it, cannot reach the facility, and the page shows that per facility.
    await page.getByRole("button", { name: "Materialize" }).click();
    const mz = page.getByTestId("materialization");
    await mz.waitFor();
    const status = await aliceMaterialization();
    assert.equal(await mz.getAttribute("data-status"), status.status);
    const phobos = mz.getByTestId("mz-facility-phobos");
    assert.match((await phobos.textContent()) ?? "", /unreachable|undelivered/);
    assert.match((await phobos.textContent()) ?? "", /facility phobos is unreachable/);
    await page.screenshot({ path: "/tmp/merge-web-realization.png", fullPage: true });

    // Push a model that does not compile, from the page: a new revision in error, its diagnostics with lines.
    await page.goto(`${url}/ui/projects/alice/experiments/demo`);
    await page.getByText("Push a model").click();
    await page
      .locator(".push textarea")
      .fill(
        'import { Network } from "@merge/model";\nconst net = new Network("bad");\nnet.node("a", nope);\nexport default net;\n',
      );
    await page.getByRole("button", { name: "Push" }).click();
    await page.waitForURL(/\/revisions\/2$/);
    const diagnostics = page.getByTestId("diagnostics");
    await diagnostics.waitFor();
    assert.match((await diagnostics.textContent()) ?? "", /line 3:15.*nope is not defined/);
    await page.getByText("This revision did not compile").waitFor();
    const rev2 = (await alice.revisions("alice", "demo")).find((r) => r.number === 2);
    assert.equal(rev2?.status, "error");
    assert.equal(await page.getByTestId("revisions").locator("li").count(), 2);
    assert.equal(await page.getByRole("button", { name: /Realize/ }).count(), 0, "no realizing a revision in error");
    await page.screenshot({ path: "/tmp/merge-web-diagnostics.png" });

    // A token the portal refuses: the UI says the session expired and offers to sign in.
    await page.evaluate(() =>
      sessionStorage.setItem(
        "merge.session",
        JSON.stringify({ token: "e30.e30.sig", expires: Date.now() + 3_600_000 }),
      ),
    );
    await page.goto(`${url}/ui/projects`);
    await page.locator("[data-error=session-expired]").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("merge.session")), null);
    assert.deepEqual(pageErrors(problems), []);
  });
});

test("sign out, sign in as administrator, activate a pending account", { skip, timeout: 120_000 }, async () => {
  const url = (started as Started).url;
  await onPage(browser as BrowserContext, "/tmp/merge-web-failure.png", async (page) => {
    // A fresh tab has no token, but the provider remembers alice (its cookie session): no password asked.
    await page.goto(`${url}/ui/`);
    await page.getByTestId("sign-in").click();
    await page.getByTestId("whoami").filter({ hasText: "alice" }).waitFor();
    // Signing out ends the provider's session too: the next sign-in asks for a password.
    await page.getByRole("button", { name: "Sign out" }).click();
    // The provider's confirmation page (the portal's own or the stock one): its "yes" button.
    await page.locator('button[form="op.logoutForm"][value="yes"]').click();
    await page.waitForLoadState();
    await page.goto(`${url}/ui/`);
    await signIn(page, "admin", (started as Started).admin.password as string);
    await page.getByRole("link", { name: "Admin", exact: true }).click();
    const pending = page.getByTestId("users").first().locator("tr[data-user=bob]");
    await pending.waitFor();
    // The operations view: the store, this replica, phobos and its certificate, alice's materialization.
    await page.getByTestId("health").waitFor();
    assert.match(
      (await page.getByTestId("health-store").textContent()) ?? "",
      /Store: sqlite, revision \d+, [\d.]+ MiB\. Portal replicas: 1\./,
    );
    assert.match((await page.getByTestId("health-facilities").textContent()) ?? "", /phobos\s*active/);
    assert.match((await page.getByTestId("health-materializations").textContent()) ?? "", /r1\.demo\.alice.*alice/);
    assert.match((await pending.textContent()) ?? "", /pending/);
    // Resource usage as the portal counts it: alice's project holds the realization accepted above.
    const usage = (await admin.usage()).byProject.alice;
    assert.ok(usage !== undefined && usage.resources > 0, "alice's accepted realization holds resources");
    const cells = await page
      .getByTestId("usage-projects")
      .locator("tr", { hasText: "alice" })
      .locator("td")
      .allTextContents();
    assert.deepEqual(
      cells.map((c) => c.trim()),
      ["alice", String(usage.resources), String(usage.realizations)],
    );
    await page.screenshot({ path: "/tmp/merge-web-admin.png", fullPage: true });
    await pending.getByRole("button", { name: "Activate" }).click();
    await page.getByRole("heading", { name: "Waiting for activation (0)" }).waitFor();
    assert.equal((await admin.user("bob")).state, "active");
  });
});

test("a 1,000-host topology draws at once and settles in a layout worker", { skip, timeout: 120_000 }, async () => {
  const url = (started as Started).url;
  await onPage(browser as BrowserContext, "/tmp/merge-web-failure.png", async (page, problems) => {
    await page.goto(`${url}/ui/projects/alice/experiments/campus`);
    // The provider still knows the administrator from the previous test: signing in asks nothing.
    await page.getByTestId("sign-in").click();
    const topo = page.locator("[data-testid=topology][data-state=rendered]");
    await topo.waitFor({ timeout: 30_000 });
    assert.equal(await topo.getAttribute("data-nodes"), "1100"); // 1,000 hosts + 100 routers
    assert.equal(await topo.getAttribute("data-lans"), "100");
    assert.equal(await topo.getAttribute("data-edges"), "1200"); // 1,100 LAN spokes + a core ring of 100
    const before = await page.evaluate(() => window.mergeTopology?.locate("h0"));
    await page.locator("[data-testid=topology][data-layout=done]").waitFor({ timeout: 30_000 });
    const settled = await page.evaluate(() => window.mergeTopology?.locate("h0"));
    assert.ok(before && settled, "h0 is drawn");
    assert.notDeepEqual(before, settled, "the worker moved the vertices");
    await page.screenshot({ path: "/tmp/merge-web-campus.png" });
    assert.deepEqual(pageErrors(problems), []);
  });
});

test("sign-up beside sign-in makes a pending account; no console errors, no favicon 404", { skip }, async () => {
  const url = (started as Started).url;
  await onPage(browser as BrowserContext, "/tmp/merge-web-failure.png", async (page, problems) => {
    const missing: string[] = [];
    page.on("response", (r) => {
      if (r.status() === 404) missing.push(r.url());
    });
    await page.goto(`${url}/ui/`);
    // Signed out (earlier tests left a session in this profile).
    await page.evaluate(() => {
      localStorage.clear();
      sessionStorage.clear();
    });
    await page.reload();
    await page.getByTestId("sign-up").click();
    const form = page.getByTestId("sign-up-form");
    await form.locator("input[name=name]").fill("carol");
    await form.locator("input[name=email]").fill("carol@example.org");
    await form.locator("input[name=password]").fill("short");
    await form.locator("button[type=submit]").click();
    // The browser's own check refuses a short password before the portal sees it.
    assert.equal(await form.locator("input[name=password]:invalid").count(), 1);
    await form.locator("input[name=password]").fill("carol-secret-pw");
    await form.locator("button[type=submit]").click();
    await page.getByTestId("signed-up").filter({ hasText: "mergectl user activate carol" }).waitFor();
    const carol = await admin.user("carol");
    assert.equal(carol.email, "carol@example.org");
    assert.equal(carol.state, "pending");
    // The same name again: the portal's refusal is shown.
    await page.reload();
    await page.getByTestId("sign-up").click();
    await form.locator("input[name=name]").fill("carol");
    await form.locator("input[name=email]").fill("carol2@example.org");
    await form.locator("input[name=password]").fill("carol-secret-pw");
    await form.locator("button[type=submit]").click();
    await form.getByRole("alert").filter({ hasText: /carol/ }).waitFor();
    // Pages that are not the UI's (the API docs, the provider's) ask for /favicon.ico too: every page gets one.
    await page.goto(`${url}/docs`);
    await page.waitForLoadState("networkidle");
    const icon = await fetch(`${url}/favicon.ico`);
    assert.equal(icon.status, 200);
    assert.match(icon.headers.get("content-type") ?? "", /image\/svg\+xml/);
    assert.deepEqual(missing, [], "no request got a 404");
    assert.deepEqual(
      problems.filter((p) => !/status of 409/.test(p)),
      [],
      "no console errors besides the refused duplicate",
    );
  });
});
