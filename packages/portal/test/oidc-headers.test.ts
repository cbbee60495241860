/**
 * Headers around the embedded OIDC provider: forwarded headers move its URLs
 * (discovery, the device flow's verification URI) only when they come from a
 * configured proxy, and its sign-in and device pages refuse to be framed.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Started, startPortal } from "../src/main.ts";
import { CLI_CLIENT, WEB_CLIENT } from "../src/oidc.ts";
import { proxyMatcher } from "../src/server.ts";

const FORWARDED = { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" };
let dirs: string[] = [];
let plain: Started;
let proxied: Started;

before(async () => {
  dirs = [await mkdtemp(join(tmpdir(), "merge-oidc-hdr-")), await mkdtemp(join(tmpdir(), "merge-oidc-hdr-"))];
  plain = await startPortal({ dataDir: dirs[0] as string, port: 0 });
  // Requests from 127.0.0.1 come through "the proxy"; others (127.0.0.2) do not.
  proxied = await startPortal({ dataDir: dirs[1] as string, port: 0, trustProxy: ["127.0.0.1"] });
});
after(async () => {
  await plain?.stop();
  await proxied?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const discovery = async (url: string) =>
  (await (await fetch(`${url}/oidc/.well-known/openid-configuration`, { headers: FORWARDED })).json()) as Record<
    string,
    string
  >;

const deviceStart = async (url: string) =>
  (await (
    await fetch(`${url}/oidc/device/auth`, {
      method: "POST",
      headers: { ...FORWARDED, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: CLI_CLIENT, scope: "openid api" }),
    })
  ).json()) as { verification_uri: string; verification_uri_complete: string };

test("without a configured proxy, X-Forwarded-Host/-Proto do not move the provider's URLs", async () => {
  const d = await discovery(plain.url);
  assert.equal(d.issuer, `${plain.url}/oidc`);
  for (const k of ["token_endpoint", "authorization_endpoint", "device_authorization_endpoint", "jwks_uri"]) {
    assert.ok(String(d[k]).startsWith(`${plain.url}/oidc/`), `${k}: ${d[k]}`);
  }
  const dev = await deviceStart(plain.url);
  assert.ok(dev.verification_uri.startsWith(`${plain.url}/oidc/`), dev.verification_uri);
  assert.ok(!JSON.stringify(dev).includes("evil.example"));
});

test("behind a configured proxy they do, and only from the proxy's address", async () => {
  const d = await discovery(proxied.url);
  assert.ok(d.token_endpoint?.startsWith("https://evil.example/"), d.token_endpoint);
  // The same headers from another address are dropped.
  const other = proxied.url.replace("127.0.0.1", "127.0.0.2");
  const { request } = await import("node:http");
  const body = await new Promise<string>((resolve, reject) => {
    const req = request(
      `${proxied.url}/oidc/.well-known/openid-configuration`,
      { localAddress: "127.0.0.2", headers: FORWARDED },
      (res) => {
        let t = "";
        res.on("data", (c) => (t += c));
        res.on("end", () => resolve(t));
      },
    );
    req.on("error", reject);
    req.end();
  });
  assert.ok(!body.includes("evil.example"), `from ${other}: ${body.slice(0, 200)}`);
});

test("sign-in and device pages refuse to be framed", async () => {
  const auth = new URL(`${plain.url}/oidc/auth`);
  auth.search = new URLSearchParams({
    client_id: WEB_CLIENT,
    response_type: "code",
    redirect_uri: `${plain.url}/callback`,
    scope: "openid api",
    code_challenge: "x".repeat(43),
    code_challenge_method: "S256",
  }).toString();
  const first = await fetch(auth, { redirect: "manual" });
  const cookies = first.headers.getSetCookie().map((c) => c.split(";")[0]);
  const signIn = await fetch(new URL(first.headers.get("location") as string, plain.url), {
    headers: { cookie: cookies.join("; ") },
  });
  assert.equal(signIn.status, 200);
  assert.match(await signIn.text(), /Sign in to Merge/);
  const dev = await deviceStart(plain.url);
  const devicePage = await fetch(dev.verification_uri);
  assert.equal(devicePage.status, 200);
  for (const res of [signIn, devicePage]) {
    assert.match(res.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
  }
});

test("proxy addresses: single addresses and subnets, IPv4 and IPv6; anything else is refused", () => {
  const m = proxyMatcher(["10.0.0.1", "192.168.0.0/16", "fd00::/8"]);
  assert.equal(m("10.0.0.1"), true);
  assert.equal(m("::ffff:10.0.0.1"), true);
  assert.equal(m("10.0.0.2"), false);
  assert.equal(m("192.168.44.3"), true);
  assert.equal(m("fd12::1"), true);
  assert.equal(m("fe80::1"), false);
  assert.equal(proxyMatcher([])("127.0.0.1"), false);
  assert.throws(() => proxyMatcher(["proxy.example"]), /not an IP address or subnet/);
});
