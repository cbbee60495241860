/**
 * Test harness: a real portal on 127.0.0.1 (port 0) over a sqlite store in a
 * fresh temp directory, an admin, and helpers to make active users. Everything
 * is removed by `stop()`.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type EtcdServer, startEtcd } from "@merge/store/testing/etcd";
import type { Constraint } from "@merge/xir";
import { PortalClient } from "../src/client/index.ts";
import { realizeEngine } from "../src/engine.ts";
import { type Started, type StartOptions, startPortal } from "../src/main.ts";
import { WEB_CLIENT } from "../src/oidc.ts";
import type { Engine } from "../src/realization.ts";
import type { PortalPlugin } from "../src/server.ts";
import type { ThrottleConfig } from "../src/throttle.ts";
import { demoSeed } from "./demo-seed.ts";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request leaving from loopback address `from`, so the portal sees that client address. */
export function requestFrom(
  url: URL,
  from: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, localAddress: from, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        text += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

export interface Harness {
  started: Started;
  url: string;
  dataDir: string;
  admin: PortalClient;
  anon: PortalClient;
  /** Registers, activates and signs in a user; returns their client. */
  user(name: string, opts?: { activate?: boolean }): Promise<PortalClient>;
  stop(): Promise<void>;
}

export async function startHarness(
  opts: {
    acceptTimeoutSeconds?: number;
    policyFile?: string;
    plugins?: PortalPlugin[];
    compile?: StartOptions["compile"];
    throttle?: ThrottleConfig;
  } = {},
): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), "merge-portal-test-"));
  const started = await startPortal({ dataDir, port: 0, seed: demoSeed(), ...opts });
  const anon = new PortalClient(started.url);
  const adminToken = await anon.login("admin", started.admin.password as string);
  const admin = new PortalClient(started.url, adminToken.token);
  return {
    started,
    url: started.url,
    dataDir,
    admin,
    anon,
    async user(name, o = {}) {
      const password = `pw-${name}-secret`;
      await anon.register({ name, email: `${name}@example.org`, password });
      if (o.activate === false) return new PortalClient(started.url);
      await admin.setUserState(name, "active");
      const t = await anon.login(name, password);
      return new PortalClient(started.url, t.token);
    },
    async stop() {
      try {
        await started.stop();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Awaits a promise expected to fail with an ApiError; returns it. */
export async function apiError(
  p: Promise<unknown>,
): Promise<{ status: number; code: string; message: string; field?: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { status?: number; code?: string; message: string; field?: string };
    if (typeof err.status === "number") return err as { status: number; code: string; message: string; field?: string };
    throw e;
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** What an API error says (status, code, message): two answers that must not be told apart compare equal. */
export function answer(e: { status: number; code: string; message: string }) {
  return { status: e.status, code: e.code, message: e.message };
}

/** A small valid XIR experiment: `n` nodes on one LAN-less chain. */
export function chainXir(name: string, n: number, constraints: Constraint[] = []): string {
  const nodes = Array.from({ length: n }, (_, i) => ({
    name: `n${i}`,
    constraints,
    sockets:
      i === 0 || i === n - 1
        ? [{ index: 0, addrs: [], constraints: [] }]
        : [
            { index: 0, addrs: [], constraints: [] },
            { index: 1, addrs: [], constraints: [] },
          ],
    properties: {},
  }));
  const links = Array.from({ length: n - 1 }, (_, i) => ({
    name: `l${i}`,
    endpoints: [
      { node: `n${i}`, socket: i === 0 ? 0 : 1 },
      { node: `n${i + 1}`, socket: 0 },
    ],
    constraints: [],
    properties: {},
  }));
  return JSON.stringify({ xir: "1.0", name, parameters: {}, nodes, links });
}

/** A minimal browser: follows redirects by hand, keeps cookies. */
export class Browser {
  /** The cookies held, by name (a test checks none reaches the log). */
  readonly cookies = new Map<string, string>();
  async go(
    url: string,
    init: { method?: string; form?: Record<string, string>; stopAt?: string } = {},
  ): Promise<{ url: string; status: number; html: string }> {
    let next: string | undefined = url;
    let method = init.method ?? "GET";
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 20 && next !== undefined; hops++) {
      const res: Response = await fetch(next, {
        method,
        redirect: "manual",
        headers: {
          cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
          ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        },
        body,
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(";");
        const i = (pair as string).indexOf("=");
        this.cookies.set((pair as string).slice(0, i), (pair as string).slice(i + 1));
      }
      const loc = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && loc) {
        next = new URL(loc, next).href;
        if (init.stopAt !== undefined && next.startsWith(init.stopAt))
          return { url: next, status: res.status, html: "" };
        method = "GET";
        body = undefined;
        continue;
      }
      return { url: next, status: res.status, html: await res.text() };
    }
    throw new Error("too many redirects");
  }
}

/**
 * The web flow up to the authorization code (authorization code + PKCE; `offline` asks for a refresh token
 * too): `user` signs in on the login page, and the browser comes back to `redirect` (`callback`, its whole
 * URL) with `code`. `verifier` is what redeeming the code needs; `browser` holds the cookies set on the way.
 */
export async function authorizationCode(url: string, user: string, password: string, o: { offline?: boolean } = {}) {
  const verifier = randomBytes(32).toString("base64url");
  const redirect = `${url}/callback`;
  const auth = new URL(`${url}/oidc/auth`);
  auth.search = new URLSearchParams({
    client_id: WEB_CLIENT,
    response_type: "code",
    redirect_uri: redirect,
    scope: o.offline ? "openid api offline_access" : "openid api",
    ...(o.offline ? { prompt: "consent" } : {}),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    state: randomBytes(8).toString("hex"),
  }).toString();
  const browser = new Browser();
  const page = await browser.go(auth.href);
  const action = /action="([^"]+\/login)"/.exec(page.html)?.[1];
  assert.ok(action, page.html);
  const back = await browser.go(new URL(action, url).href, {
    method: "POST",
    form: { username: user, password },
    stopAt: redirect,
  });
  const code = new URL(back.url).searchParams.get("code");
  assert.ok(code, back.url);
  return { code, verifier, redirect, callback: back.url, browser };
}

/**
 * Signs `user` in through the web flow (authorization code + PKCE; with `offline`, also a refresh token)
 * and returns the token endpoint's answer.
 */
export async function signInOnTheWeb(
  url: string,
  user: string,
  password: string,
  o: { offline?: boolean } = {},
): Promise<{ access_token: string; refresh_token?: string }> {
  const { code, verifier, redirect } = await authorizationCode(url, user, password, o);
  const res = await redeemCode(url, code, redirect, { code_verifier: verifier });
  return (await res.json()) as { access_token: string; refresh_token?: string };
}

/** The token endpoint's answer to the web client's authorization `code` (PKCE's `code_verifier` among `extra`). */
export function redeemCode(
  url: string,
  code: string,
  redirect: string,
  extra: Record<string, string>,
): Promise<Response> {
  return fetch(`${url}/oidc/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirect,
      client_id: WEB_CLIENT,
      ...extra,
    }),
  });
}

/**
 * Called at a test file's top: before its tests, an etcd and two portal replicas on it sharing one data
 * directory (`tmpPrefix`), started at the same time on the fresh store (each would seed it: one admin, one
 * demo facility); after them, all stopped and removed. The replicas, once `before` has run.
 */
export function etcdReplicas(tmpPrefix: string): Started[] {
  const replicas: Started[] = [];
  let etcd: EtcdServer | undefined;
  let dataDir: string | undefined;
  before(async () => {
    const e = await startEtcd();
    etcd = e;
    const dir = await mkdtemp(join(tmpdir(), tmpPrefix));
    dataDir = dir;
    const start = () => startPortal({ dataDir: dir, port: 0, storeUrl: e.url, seed: demoSeed() });
    replicas.push(...(await Promise.all([start(), start()])));
  });
  after(async () => {
    for (const r of replicas) await r.stop();
    await etcd?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });
  return replicas;
}

/** A harness and a second portal on its data directory, for the tests that race two portals. */
export interface Replicated {
  readonly h: Harness;
  /** Its own store handle and realizer: the two race through the store's compare-and-swap, not an in-process queue. */
  readonly replica: Started;
  /** The compare-and-swap retries of both realizers. */
  retries(): number;
}

/** Called at a test file's top: before its tests, a harness and a replica on its sqlite data directory; after them, both stopped. */
export function replicated(): Replicated {
  let h: Harness | undefined;
  let replica: Started | undefined;
  before(async () => {
    h = await startHarness();
    replica = await startPortal({ dataDir: h.dataDir, port: 0 });
  });
  after(async () => {
    await replica?.stop();
    await h?.stop();
  });
  const up = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error("the harness did not start");
    return x;
  };
  return {
    get h() {
      return up(h);
    },
    get replica() {
      return up(replica);
    },
    retries: () => up(h).started.portal.ctx.realizer.retries + up(replica).portal.ctx.realizer.retries,
  };
}

/** The real realization engine, each realization held back `ms` after computing it: realizers racing on one store overlap. */
export function slowedEngine(ms: number): Engine {
  return {
    prepare: realizeEngine.prepare,
    realize: async (input) => {
      const r = await realizeEngine.realize(input);
      await new Promise((res) => setTimeout(res, ms));
      return r;
    },
  };
}
