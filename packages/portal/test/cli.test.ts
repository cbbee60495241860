import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { PortalClient } from "../src/client/index.ts";
import { apiError, Browser, chainXir, type Harness, startHarness } from "./harness.ts";

const MRG = fileURLToPath(new URL("../../cli/src/mrg.ts", import.meta.url));
const MERGECTL = fileURLToPath(new URL("../../cli/src/mergectl.ts", import.meta.url));
const children = new Set<ChildProcess>();
let h: Harness;
let configDir: string;

before(async () => {
  h = await startHarness();
  configDir = await mkdtemp(join(tmpdir(), "merge-cli-test-"));
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await h?.stop();
  await rm(configDir, { recursive: true, force: true });
});

function run(script: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    env: { ...process.env, MERGE_CONFIG_DIR: configDir, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b) => {
    stdout += b;
  });
  child.stderr.on("data", (b) => {
    stderr += b;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done, out: () => stdout };
}

const mrg = (...args: string[]) => run(MRG, args).done;

const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

test("device-flow sign-in through mrg, then the experiment workflow through the CLI", async () => {
  await h.anon.register({ name: "oscar", email: "oscar@example.org", password: "oscar-password" });
  await h.admin.setUserState("oscar", "active");

  const login = run(MRG, ["login", "--portal", h.url]);
  let url: string | undefined;
  for (let i = 0; i < 200 && url === undefined; i++) {
    url = /open (http\S+)/.exec(login.out())?.[1];
    if (url === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(url, "mrg login prints a verification URL");

  const b = new Browser();
  const confirm = await b.go(url);
  assert.equal(confirm.status, 200, confirm.html);
  const xsrf = field(confirm.html, "xsrf");
  const userCode = field(confirm.html, "user_code");
  assert.ok(xsrf && userCode, confirm.html);
  const loginPage = await b.go(new URL("/oidc/device", h.url).href, {
    method: "POST",
    form: { xsrf, user_code: userCode, confirm: "yes" },
  });
  const action = /action="([^"]+\/login)"/.exec(loginPage.html)?.[1];
  assert.ok(action, loginPage.html);
  const wrong = await b.go(new URL(action, h.url).href, {
    method: "POST",
    form: { username: "oscar", password: "nope" },
  });
  assert.match(wrong.html, /Wrong user name or password/);
  const done = await b.go(new URL(action, h.url).href, {
    method: "POST",
    form: { username: "oscar", password: "oscar-password" },
  });
  assert.match(done.html, /signed in/i, done.html);

  const r = await login.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /signed in to .* as oscar/);
  const session = JSON.parse(await readFile(join(configDir, "session.json"), "utf8")) as {
    token: string;
    kind: string;
  };
  assert.equal(session.kind, "oauth");
  assert.equal(session.token.split(".").length, 3, "an OAuth2 JWT access token");

  // An access token the portal refuses (as when it expires) is renewed with the refresh token.
  const full = JSON.parse(await readFile(join(configDir, "session.json"), "utf8")) as Record<string, string>;
  assert.ok(full.refreshToken, "device-flow sign-in keeps a refresh token");
  const [hd, body] = (full.token as string).split(".");
  await writeFile(join(configDir, "session.json"), JSON.stringify({ ...full, token: `${hd}.${body}.AAAA` }));
  const who = await mrg("whoami", "--json");
  assert.equal(who.code, 0, who.stderr);
  assert.equal(JSON.parse(who.stdout).name, "oscar");
  const renewed = JSON.parse(await readFile(join(configDir, "session.json"), "utf8")) as Record<string, string>;
  assert.notEqual(renewed.token, `${hd}.${body}.AAAA`);

  assert.equal((await mrg("new", "experiment", "web.oscar", "--visibility", "public")).code, 0);
  const model = join(configDir, "web.json");
  await writeFile(model, chainXir("web", 2));
  const push = await mrg("push", model, "web.oscar");
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stdout, /compiled/);
  const rz = await mrg("realize", "r1.web.oscar", "--accept");
  assert.equal(rz.code, 0, rz.stderr);
  assert.match(rz.stdout, /accepted/);
  const ls = await mrg("list", "realizations", "--json");
  assert.deepEqual(
    (JSON.parse(ls.stdout) as { id: string }[]).map((x) => x.id),
    ["r1.web.oscar"],
  );
  const table = await mrg("list", "experiments", "oscar");
  assert.match(table.stdout, /│ web\s+│ oscar/);
  const bad = await mrg("realize", "nope.web");
  assert.equal(bad.code, 2, "a malformed name is a usage error");
  assert.match(bad.stderr, /expected realization\.experiment\.project/);
  const denied = await mrg("delete", "project", "admin");
  assert.equal(denied.code, 1);
  // Another user's personal project is private: to oscar it does not exist.
  assert.match(denied.stderr, /error: project 'admin' does not exist/);
  assert.equal((await mrg("relinquish", "r1.web.oscar")).code, 0);

  // mergectl with an administrator's token.
  const admin = await h.anon.login("admin", h.started.admin.password as string);
  const ctl = await run(MERGECTL, ["list", "users", "--json", "--portal", h.url], { MERGE_TOKEN: admin.token }).done;
  assert.equal(ctl.code, 0, ctl.stderr);
  assert.ok((JSON.parse(ctl.stdout) as { name: string }[]).some((u) => u.name === "oscar"));
  const load = await run(MERGECTL, ["facility", "load", "sample:phobos", "--portal", h.url, "--json"], {
    MERGE_TOKEN: admin.token,
  }).done;
  assert.equal(load.code, 0, load.stderr);
  assert.equal((JSON.parse(load.stdout) as { name: string }).name, "phobos");
  const usage = await run(MERGECTL, ["usage", "--portal", h.url], { MERGE_TOKEN: admin.token }).done;
  assert.equal(usage.code, 0, usage.stderr);
  // A password sign-in's API token is revoked on logout.
  const pw = await run(MRG, ["login", "oscar", "--password", "oscar-password", "--portal", h.url]).done;
  assert.equal(pw.code, 0, pw.stderr);
  const apiSession = JSON.parse(await readFile(join(configDir, "session.json"), "utf8")) as {
    token: string;
    kind: string;
  };
  assert.equal(apiSession.kind, "api");
  assert.equal((await mrg("logout")).code, 0);
  assert.equal((await apiError(new PortalClient(h.url, apiSession.token).whoami())).status, 401);
  assert.equal((await run(MRG, ["login", "oscar", "--password", "oscar-password", "--portal", h.url]).done).code, 0);

  const freeze = await run(MERGECTL, ["user", "freeze", "oscar", "--portal", h.url], { MERGE_TOKEN: admin.token }).done;
  assert.equal(freeze.code, 0, freeze.stderr);
  // Freezing revokes the account's tokens.
  const after = await mrg("whoami");
  assert.equal(after.code, 1);
  assert.match(after.stderr, /revoked/);

  assert.equal((await mrg("logout")).code, 0);
  const out = await mrg("whoami");
  assert.match(out.stderr, /not signed in; run 'mrg login'/);
});
