// Jupyter in an XDC through the portal's proxy, for real: the Debian notebook in the XDC (its image layer built
// once), the portal holding its token, members in (Bearer header or the web UI's cookie, HTTP and WebSocket
// upgrades), a non-member and an anonymous caller out, Jupyter's port itself closed without the token, and
// no Jupyter process left after delete.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { imageCache } from "@merge/facility/linux";
import { closeThenRemove } from "@merge/facility/testing";
import { PortalClient } from "@merge/portal/client";
import { ensureJupyterLayer } from "../src/index.ts";
import { mrg, startXdcStack, type XdcStack } from "./fixture.ts";

const root = process.getuid?.() === 0;
const image = existsSync(join(imageCache(), "bookworm", "usr/sbin/sshd"));
const skip = !root ? "needs root" : !image ? "needs the Debian image (scripts/setup.sh)" : false;
const BASE = "/xdc/x0.myproj/jupyter";

/** Pids whose command line runs this test's Jupyter. */
function jupyterPids(): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").includes(`base_url=${BASE}/`)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** A WebSocket upgrade through the proxy: the status it answers (101 when Jupyter took it). */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        ...headers,
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("Jupyter in an XDC, through the portal", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "xdc-jupyter-"));
  let s: XdcStack;
  let alice: PortalClient;
  const bearer: Record<string, string> = {};

  before(async () => {
    await ensureJupyterLayer(); // the first time: apt in a chroot (a minute or more), cached after
    s = await startXdcStack(tmp);
    alice = await s.user("alice");
    await s.user("bob");
    await s.user("carol");
    await alice.createProject({ name: "myproj" });
    await alice.addMember("myproj", "bob");
    for (const u of ["alice", "bob", "carol"])
      bearer[u] = (await new PortalClient(s.portal.url).login(u, `pw-${u}-secret`)).token;
  });
  after(() => closeThenRemove(tmp, s));

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${s.portal.url}${path}`, { headers, redirect: "manual" });

  test("mrg xdc new --jupyter: members reach Jupyter's API through the proxy, nobody else does", async () => {
    const made = await mrg(s.portal.url, bearer.alice, ["xdc", "new", "x0.myproj", "--jupyter", "--json"]);
    assert.equal(made.code, 0, made.stderr);
    const x = JSON.parse(made.stdout) as { jupyter: boolean; address: string };
    assert.equal(x.jupyter, true);
    assert.doesNotMatch(made.stdout, /token/i, "the API never shows Jupyter's token");

    // Jupyter starts after sshd: wait until it answers through the proxy.
    let status = 0;
    for (let i = 0; i < 600 && status !== 200; i++) {
      status = (await get(`${BASE}/api/status`, { authorization: `Bearer ${bearer.alice}` })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, "Jupyter answered through the proxy");

    // bob (a member) with his session as a header; the kernels API answers.
    const kernels = await get(`${BASE}/api/kernels`, { authorization: `Bearer ${bearer.bob}` });
    assert.equal(kernels.status, 200);
    assert.deepEqual(await kernels.json(), []);

    // The web UI's way: the portal sets a cookie for the proxy path only; with it alone a page opens.
    const open = await fetch(`${s.portal.url}/projects/myproj/xdcs/x0/jupyter`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer.bob}` },
    });
    assert.equal(open.status, 200);
    assert.deepEqual(await open.json(), { url: `${BASE}/` });
    const cookie = (open.headers.get("set-cookie") ?? "").split(";")[0] as string;
    assert.match(open.headers.get("set-cookie") ?? "", /HttpOnly; SameSite=Strict/);
    assert.match(open.headers.get("set-cookie") ?? "", /Path=\/xdc\/x0\.myproj\/jupyter\//);
    const tree = await get(`${BASE}/tree`, { cookie });
    assert.equal(tree.status, 200);
    assert.match(await tree.text(), /Jupyter/);

    // A kernel's WebSocket through the proxy: a member's upgrade is Jupyter's (101).
    const k = await fetch(`${s.portal.url}${BASE}/api/kernels`, {
      method: "POST",
      headers: { cookie, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(k.status, 201, await k.clone().text());
    const { id } = (await k.json()) as { id: string };
    const ws = `${s.portal.url}${BASE}/api/kernels/${id}/channels`;
    assert.equal(await upgradeStatus(ws, { cookie }), 101);
    assert.equal(await upgradeStatus(ws, { authorization: `Bearer ${bearer.alice}` }), 101);

    // carol is no member: 404, as for a project she may not see; nobody signed in: 401; a made-up cookie: 401.
    for (const path of [`${BASE}/api/kernels`, `${BASE}/tree`, `${BASE}/`]) {
      assert.equal((await get(path, { authorization: `Bearer ${bearer.carol}` })).status, 404, path);
      assert.equal((await get(path)).status, 401, path);
      assert.equal((await get(path, { cookie: "mrg_jupyter=made-up" })).status, 401, path);
    }
    assert.equal(await upgradeStatus(ws, { authorization: `Bearer ${bearer.carol}` }), 404);
    assert.equal(await upgradeStatus(ws, {}), 401);
    const carolOpens = await fetch(`${s.portal.url}/projects/myproj/xdcs/x0/jupyter`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer.carol}` },
    });
    assert.equal(carolOpens.status, 404);
    assert.equal(carolOpens.headers.get("set-cookie"), null);

    // Jupyter's own port, without the portal: its token is required (the host can reach the XDC's address).
    const direct = await fetch(`http://${x.address}:8888${BASE}/api/kernels`);
    assert.equal(direct.status, 403);
    // An XDC without Jupyter has no proxy.
    await alice.createXdc("myproj", { name: "x1" });
    assert.equal(
      (await get("/xdc/x1.myproj/jupyter/api/status", { authorization: `Bearer ${bearer.alice}` })).status,
      404,
    );
    await alice.deleteXdc("myproj", "x1");
    // The host refuses a Jupyter XDC without a token, naming the field.
    await assert.rejects(
      async () => s.host.create({ id: "x9.myproj", project: "myproj", gid: 30000, accounts: [], jupyter: true }),
      /jupyterToken: expected 32 to 128 letters/,
    );
  });

  test("a member removed from the project is out at once; delete leaves no Jupyter process", async () => {
    await alice.removeMember("myproj", "bob");
    assert.equal((await get(`${BASE}/api/status`, { authorization: `Bearer ${bearer.bob}` })).status, 404);
    assert.ok(jupyterPids().length > 0, "Jupyter runs");
    await alice.deleteXdc("myproj", "x0");
    assert.deepEqual(jupyterPids(), []);
    assert.deepEqual(await s.host.leftovers("x0.myproj"), []);
    assert.equal((await get(`${BASE}/api/status`, { authorization: `Bearer ${bearer.alice}` })).status, 404);
  });
});
