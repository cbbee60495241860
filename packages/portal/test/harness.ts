/**
 * Test harness: a real portal on 127.0.0.1 (port 0) over a sqlite store in a
 * fresh temp directory, an admin, and helpers to make active users. Everything
 * is removed by `stop()`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PortalClient } from "../src/client/index.ts";
import { type Started, startPortal } from "../src/main.ts";

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
  opts: { acceptTimeoutSeconds?: number; policyFile?: string } = {},
): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), "merge-portal-test-"));
  const started = await startPortal({ dataDir, port: 0, quiet: true, ...opts });
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

/** A small valid XIR experiment: `n` nodes on one LAN-less chain. */
export function chainXir(name: string, n: number): string {
  const nodes = Array.from({ length: n }, (_, i) => ({
    name: `n${i}`,
    constraints: [],
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
