#!/usr/bin/env -S node --import tsx
/**
 * Starts a portal: sqlite store in a local data directory (default .data),
 * the facilities given as `seed` registered on first start (`npm start` gives
 * the demo, phobos; the portal itself knows no facility model), an administrator created
 * on first start with its credentials printed once and kept in
 * admin-credentials in the data directory (mode 0600). Prints the URL.
 *
 *   tsx packages/portal/src/main.ts [--data DIR] [--host 127.0.0.1] [--port 8080] [--store URL] [--policy FILE]
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeConfinement } from "@merge/model";
import { openStore, type Store } from "@merge/store";
import type { Facility } from "@merge/xir";
import { registerUser } from "./accounts.ts";
import type { PortalConfig } from "./context.ts";
import { Batch, read } from "./documents.ts";
import { randomId } from "./identity.ts";
import { type FacilityRecord, keys, type User } from "./objects.ts";
import { type BuildOptions, buildPortal, type Portal, type PortalPlugin } from "./server.ts";
import type { Workspace } from "./workspace.ts";

export interface StartOptions {
  dataDir: string;
  host?: string;
  port?: number;
  storeUrl?: string;
  policyFile?: string;
  publicUrl?: string;
  acceptTimeoutSeconds?: number;
  /** Verify bearer tokens from this OIDC issuer instead of embedding a provider. */
  externalIssuer?: PortalConfig["externalIssuer"];
  /** Route plugins of other rooms (materializations, XDCs). */
  plugins?: PortalPlugin[];
  /** Limits on failed password/token/code checks (see throttle.ts). */
  throttle?: BuildOptions["throttle"];
  /** Bounds of the compile pool (compile-pool.ts). */
  compile?: PortalConfig["compile"];
  /** Reverse proxies whose forwarded headers are trusted (default: MERGE_TRUST_PROXY, comma-separated; none). */
  trustProxy?: string[];
  /** Facilities registered on first start, when the store has none (`npm start`: the demo facility). */
  seed?: FacilitySeed[];
  /** Program run per notice (the e-mail hook, notifications.ts; default: MERGE_NOTIFY_COMMAND). */
  notifyCommand?: string;
  /** Request log destination (default: stdout when MERGE_PORTAL_LOG=1, otherwise no request log). */
  logStream?: NodeJS.WritableStream;
}

export interface FacilitySeed {
  model: Facility;
  /** The commander's URL; `npm start` points it at the facility it starts. */
  endpoint: string;
  description?: string;
}

export interface Started {
  portal: Portal;
  store: Store;
  url: string;
  /** `password`: from admin-credentials (it may have been changed since); `created`: made by this start. */
  admin: { name: string; password?: string; created: boolean };
  stop(): Promise<void>;
}

export async function startPortal(o: StartOptions): Promise<Started> {
  const dataDir = resolve(o.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const store = openStore(o.storeUrl ?? { backend: "sqlite", dir: join(dataDir, "store") });
  const host = o.host ?? "127.0.0.1";
  const port = o.port ?? 8080;
  // The public URL must be known before listening (it is the OIDC issuer); with port 0 we bind first.
  const boundPort =
    port !== 0
      ? port
      : await new Promise<number>((res, rej) => {
          const s = createServer();
          s.once("error", rej);
          s.listen(0, host, () => {
            const p = (s.address() as { port: number }).port;
            s.close(() => res(p));
          });
        });
  const url = o.publicUrl ?? `http://${host}:${boundPort}`;
  const portal = await buildPortal({
    store,
    dataDir,
    publicUrl: url,
    policyFile: o.policyFile,
    acceptTimeoutSeconds: o.acceptTimeoutSeconds,
    externalIssuer: o.externalIssuer,
    logger: process.env.MERGE_PORTAL_LOG === "1",
    plugins: o.plugins,
    throttle: o.throttle,
    compile: o.compile,
    logStream: o.logStream,
    notifyCommand: o.notifyCommand ?? (process.env.MERGE_NOTIFY_COMMAND || undefined),
    trustProxy: o.trustProxy ?? (process.env.MERGE_TRUST_PROXY ?? "").split(",").filter((a) => a.trim() !== ""),
  });
  // The portal's own workspace: its quotas put the administrator's home and project on volumes too.
  const admin = await ensureAdmin(store, portal.ctx.workspace, dataDir);
  await seedFacilities(store, o.seed ?? []);
  await portal.app.listen({ host, port: boundPort });
  return {
    portal,
    store,
    url,
    admin,
    async stop() {
      await portal.close();
      await store.close();
    },
  };
}

async function ensureAdmin(store: Store, ws: Workspace, dataDir: string): Promise<Started["admin"]> {
  const file = join(dataDir, "admin-credentials");
  const saved = () => (existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { password?: string }) : {});
  if ((await read<User>(store, keys.user("admin"))) !== undefined)
    return { name: "admin", password: saved().password, created: false };
  // The password is on disk before the account exists, so a crash in between never leaves an admin nobody
  // knows the password of; a replica starting at the same time (same data directory) reuses it.
  let password = saved().password;
  if (password === undefined) {
    password = `${randomId(6)}-${randomId(6)}-${randomId(6)}`;
    try {
      writeFileSync(file, JSON.stringify({ name: "admin", password }), { mode: 0o600, flag: "wx" });
    } catch {
      password = saved().password as string;
    }
  }
  try {
    await registerUser(store, ws, {
      name: "admin",
      email: "admin@localhost",
      fullName: "Portal administrator",
      password,
      admin: true,
      active: true,
    });
  } catch (e) {
    if ((await read<User>(store, keys.user("admin"))) === undefined) throw e;
    return { name: "admin", password, created: false };
  }
  return { name: "admin", password, created: true };
}

async function seedFacilities(store: Store, seed: readonly FacilitySeed[]): Promise<void> {
  if (seed.length === 0 || (await store.range(keys.facilities(), { limit: 1 })).length > 0) return;
  const now = new Date().toISOString();
  const batch = new Batch();
  for (const { model, endpoint, description } of seed) {
    const f: FacilityRecord = {
      name: model.name,
      description: description ?? "",
      endpoint,
      certificate: "",
      state: "active",
      registered: now,
      updated: now,
      model,
    };
    batch.absent(keys.facility(f.name)).put(keys.facility(f.name), f);
  }
  // Replicas starting together race here: one wins, the others find the facilities there.
  await batch.put(keys.facilityEpoch(), { changed: now, by: seed.map((s) => s.model.name).join(",") }).tryCommit(store);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: "string", default: process.env.MERGE_DATA_DIR ?? ".data" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: process.env.MERGE_PORT ?? "8080" },
      store: { type: "string" },
      policy: { type: "string" },
      "accept-timeout": { type: "string" },
    },
  });
  const started = await startPortal({
    dataDir: values.data as string,
    host: values.host,
    port: Number(values.port),
    storeUrl: values.store,
    policyFile: values.policy,
    acceptTimeoutSeconds: values["accept-timeout"] === undefined ? undefined : Number(values["accept-timeout"]),
  });
  // One machine-readable line first (tests and scripts read it), then the human summary.
  process.stdout.write(`PORTAL ${JSON.stringify({ url: started.url, pid: process.pid })}\n`);
  process.stdout.write(`Merge portal listening on ${started.url} (API docs: ${started.url}/docs)\n`);
  // Which confinement model programs get, said once at start-up (never a silent fallback to none).
  process.stdout.write(`compile: ${describeConfinement()}\n`);
  // The password itself stays in the 0600 file: stdout usually ends up in a journal or a CI log.
  if (started.admin.password !== undefined) {
    process.stdout.write(
      `administrator: ${started.admin.name} (password in ${resolve(values.data as string, "admin-credentials")})\n`,
    );
  }
  process.stdout.write(`sign in:  mrg login --portal ${started.url}\n`);
  const stop = () => {
    started.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("portal/src/main.ts")) {
  main().catch((e: unknown) => {
    process.stderr.write(`portal: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
