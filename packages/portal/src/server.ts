/**
 * Builds the portal: a Fastify app with TypeBox schemas, strict validation,
 * one error shape, the access hooks, OpenAPI 3.1 at /openapi.json and docs
 * at /docs, the OIDC provider under /oidc, and one plugin per object type.
 */
import { readFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import { resolve } from "node:path";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { errorKind, MergeError } from "@merge/xir/errors";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { installAccess } from "./access.ts";
import { ensureDirectories, upgradeAccounts } from "./accounts.ts";
import { AuditLog } from "./audit.ts";
import { CompilePool } from "./compile-pool.ts";
import type { PortalConfig, PortalContext } from "./context.ts";
import { realizeEngine } from "./engine.ts";
import { apiCodeOf, PortalError } from "./errors.ts";
import { ReplicaPresence } from "./health.ts";
import { Identity } from "./identity.ts";
import { ActivityLog } from "./idle.ts";
import { parseLease } from "./lease-policy.ts";
import { LeaseKeeper } from "./leases.ts";
import { loggerOptions } from "./logging.ts";
import { metricsRoute, PortalMetrics } from "./metrics.ts";
import { NAME_PATTERN } from "./names.ts";
import { Notifier } from "./notifications.ts";
import { keys } from "./objects.ts";
import { externalVerifier, mountOidc, type Oidc } from "./oidc.ts";
import { DEFAULT_POLICY_FILE, loadPolicy } from "./policy.ts";
import { parseHomeQuota, parseProjectQuota } from "./project-volume.ts";
import { parseQuota } from "./quota.ts";
import { type Engine, Realizer } from "./realization.ts";
import { auditRoutes } from "./routes/audit.ts";
import { credentialRoutes } from "./routes/credentials.ts";
import { experimentRoutes } from "./routes/experiments.ts";
import { facilityRoutes } from "./routes/facilities.ts";
import { healthRoutes } from "./routes/health.ts";
import { interconnectRoutes } from "./routes/interconnects.ts";
import { leaseRoutes } from "./routes/leases.ts";
import { poolRoutes } from "./routes/pools.ts";
import { projectRoutes } from "./routes/projects.ts";
import { realizationRoutes } from "./routes/realizations.ts";
import { storageRoutes } from "./routes/storage.ts";
import { usersRoutes } from "./routes/users.ts";
import { Throttle, type ThrottleConfig, Throttled } from "./throttle.ts";
import { shareThrottle } from "./throttle-sync.ts";
import { Workspace } from "./workspace.ts";

export interface Portal {
  app: FastifyInstance;
  ctx: PortalContext;
  oidc: Oidc | undefined;
  close(): Promise<void>;
}

/** A route plugin from another room (materializations, XDCs): registered like the portal's own, with the context. */
export type PortalPlugin = FastifyPluginAsync<{ ctx: PortalContext }>;

export interface BuildOptions {
  engine?: Engine;
  plugins?: PortalPlugin[];
  /** Limits on failed secret checks (defaults in throttle.ts); tests shorten the locks. */
  throttle?: ThrottleConfig;
  /** Write the request log here (turns logging on, redacted like the default destination). */
  logStream?: NodeJS.WritableStream;
}

const FORWARDED_HEADERS = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port"];

/** Whether an address is one of the configured proxies (addresses or CIDR subnets, IPv4 or IPv6). */
export function proxyMatcher(proxies: readonly string[]): (address: string) => boolean {
  if (proxies.length === 0) return () => false;
  const list = new BlockList();
  for (const p of proxies) {
    const [addr = "", bits] = p.trim().split("/");
    const type = isIP(addr) === 6 ? "ipv6" : "ipv4";
    if (isIP(addr) === 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits)))
      throw new RangeError(`trustProxy: '${p}' is not an IP address or subnet (a.b.c.d, a.b.c.d/nn, IPv6 too)`);
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return (address) => {
    const a = address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 6 ? "ipv6" : "ipv4");
  };
}

export async function buildPortal(config: PortalConfig & BuildOptions): Promise<Portal> {
  const full = {
    store: config.store,
    dataDir: resolve(config.dataDir),
    publicUrl: config.publicUrl.replace(/\/$/, ""),
    acceptTimeoutSeconds: config.acceptTimeoutSeconds ?? 47,
    holdSeconds: config.holdSeconds ?? 0,
    bodyLimit: config.bodyLimit ?? 256 * 1024,
    maxModelBytes: config.maxModelBytes ?? 8 * 1024 * 1024,
    logger: config.logger ?? false,
    externalIssuer: config.externalIssuer,
    trustProxy: config.trustProxy ?? [],
    notifyCommand: config.notifyCommand,
  };
  const fromProxy = proxyMatcher(full.trustProxy);
  const policyText = readFileSync(config.policyFile ?? DEFAULT_POLICY_FILE, "utf8");
  const workspace = new Workspace(
    full.dataDir,
    parseProjectQuota(policyText, config.policyFile ?? DEFAULT_POLICY_FILE),
    parseHomeQuota(policyText, config.policyFile ?? DEFAULT_POLICY_FILE),
  );
  const throttle = new Throttle(config.throttle);
  // Failure counts are shared by every replica on this store (throttle-sync.ts).
  const sharedThrottle = await shareThrottle(config.store, throttle);
  const policyFile = config.policyFile ?? DEFAULT_POLICY_FILE;
  const realizer = new Realizer(
    config.store,
    config.engine ?? realizeEngine,
    full.acceptTimeoutSeconds * 1000,
    full.holdSeconds * 1000,
  );
  const metrics = new PortalMetrics(config.store);
  const audit = new AuditLog(config.store);
  const activity = new ActivityLog(config.store);
  const notifier = new Notifier(config.store, full.notifyCommand, undefined, (n) =>
    metrics.notices.inc({ kind: n.kind }),
  );
  const ctx: PortalContext = {
    store: config.store,
    config: full,
    policy: loadPolicy(config.policyFile ?? DEFAULT_POLICY_FILE),
    quota: parseQuota(
      readFileSync(config.policyFile ?? DEFAULT_POLICY_FILE, "utf8"),
      config.policyFile ?? DEFAULT_POLICY_FILE,
    ),
    identity: new Identity(config.store, throttle),
    workspace,
    realizer,
    notifier,
    metrics,
    audit,
    replica: new ReplicaPresence(config.store, full.publicUrl),
    leases: new LeaseKeeper(
      config.store,
      parseLease(readFileSync(policyFile, "utf8"), policyFile),
      realizer,
      notifier,
      (outcome) => metrics.leasesExpired.inc({ outcome }),
      activity,
    ),
    compiles: new CompilePool(config.compile),
  };
  await upgradeAccounts(config.store);
  await ensureDirectories(config.store, workspace);

  const app = Fastify({
    logger: full.logger || config.logStream !== undefined ? loggerOptions(config.logStream) : false,
    bodyLimit: full.bodyLimit,
    // Bodies are checked as sent: no silent coercion, no silently dropped unknown fields.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    routerOptions: { maxParamLength: 200 },
    // req.ip is the client's address (X-Forwarded-For) only when the request came through a configured proxy.
    trustProxy: (address: string) => fromProxy(address),
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Forwarded headers from anyone but a configured proxy are dropped before any handler (or the OIDC
  // provider, which builds its URLs from X-Forwarded-Host/-Proto) sees them.
  app.addHook("onRequest", async (req) => {
    if (fromProxy(req.raw.socket.remoteAddress ?? "")) return;
    for (const h of FORWARDED_HEADERS) delete req.raw.headers[h];
  });

  app.setErrorHandler((err: FastifyError | MergeError, req, reply) => {
    if (err instanceof PortalError) return reply.code(err.status).send(err.toJSON());
    if (err instanceof Throttled) {
      return reply
        .code(429)
        .header("retry-after", String(err.retryAfterSeconds))
        .send({ error: "too_many_requests", message: err.message });
    }
    // Any other error of the catalog answers with the status the catalog gives it (a store CAS that
    // gave up is a 409, an unreachable store a 503), under the API code of that status.
    if (err instanceof MergeError && err.status < 500) {
      return reply.code(err.status).send({ error: apiCodeOf(err.status), message: err.message });
    }
    if (err instanceof MergeError && err.status === 503) {
      req.log.warn({ err }, "unavailable");
      return reply
        .code(503)
        .send({ error: "unavailable", message: `${errorKind(err.domain, err.code)?.meaning} (${err.id}); try again` });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const v = fe.validation[0];
      const where = fe.validationContext ?? "body";
      const path = (v?.instancePath ?? "").replace(/^\//, "").replace(/\//g, ".");
      const extra = v?.params as Record<string, unknown> | undefined;
      let field = path;
      let message = `${where}${path ? `.${path}` : ""} ${v?.message ?? "is invalid"}`;
      if (v?.keyword === "additionalProperties" && extra?.additionalProperty !== undefined) {
        field = path ? `${path}.${String(extra.additionalProperty)}` : String(extra.additionalProperty);
        message = `${where}: unknown field '${field}'; remove it`;
      } else if (v?.keyword === "required" && extra?.missingProperty !== undefined) {
        field = path ? `${path}.${String(extra.missingProperty)}` : String(extra.missingProperty);
        message = `${where}: missing required field '${field}'`;
      } else if (v?.keyword === "pattern" && extra?.pattern === NAME_PATTERN) {
        message = `${where}.${path}: not a valid name: use 1-32 lowercase letters and digits, starting with a letter`;
      }
      return reply.code(400).send({ error: "bad_request", message, ...(field ? { field } : {}) });
    }
    const status = fe.statusCode ?? 500;
    if (status === 413) {
      return reply
        .code(413)
        .send({ error: "too_large", message: `request body is larger than this call accepts (${fe.message})` });
    }
    if (status === 415)
      return reply.code(415).send({ error: "unsupported", message: `${fe.message}; send application/json` });
    if (status >= 400 && status < 500) return reply.code(status).send({ error: "bad_request", message: fe.message });
    req.log.error({ err }, "internal error");
    if (!full.logger)
      process.stderr.write(`portal: internal error on ${req.method} ${req.url}: ${(err as Error).stack ?? err}\n`);
    return reply.code(500).send({ error: "internal", message: "internal error; the portal log has details" });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: "not_found", message: `no such API route: ${req.method} ${req.url.split("?")[0]}` }),
  );

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Merge portal API",
        version: "1.0.0",
        description: "Projects, experiments, revisions, realizations, facilities",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  installAccess(app, ctx);
  metrics.install(app);
  audit.install(app);
  activity.install(app);
  ctx.idle = async (mz) => {
    const m = await ctx.store.get(keys.materialization(mz.project, mz.experiment, mz.realization));
    if (m === undefined) return undefined;
    const created = (JSON.parse(m.value) as { created: string }).created;
    return activity.idleness({ ...mz, created }, ctx.leases.terms.idle);
  };
  ctx.identity.onSignIn = (e) =>
    void audit.record({
      actor: e.user,
      action: e.ok ? "login" : "login.failed",
      target: e.user,
      ok: e.ok,
      address: e.address,
      ...(e.reason ? { detail: e.reason } : {}),
    });
  await metricsRoute(app, metrics);
  app.get("/openapi.json", { config: { access: "public" }, schema: { hide: true } }, async () => app.swagger());

  const oidc = full.externalIssuer === undefined ? await mountOidc(app, ctx) : undefined;
  if (full.externalIssuer !== undefined) {
    ctx.identity.setJwtVerifier(externalVerifier(full.externalIssuer));
  }

  for (const plugin of [
    usersRoutes,
    storageRoutes,
    credentialRoutes,
    projectRoutes,
    experimentRoutes,
    realizationRoutes,
    leaseRoutes,
    auditRoutes,
    healthRoutes,
    facilityRoutes,
    interconnectRoutes,
    poolRoutes,
  ]) {
    await app.register(plugin, { ctx });
  }
  for (const plugin of config.plugins ?? []) await app.register(plugin, { ctx });
  await app.ready();
  ctx.leases.start();
  await ctx.replica.start();

  return {
    app,
    ctx,
    oidc,
    async close() {
      await ctx.leases.stop();
      await ctx.replica.stop();
      await app.close();
      await ctx.compiles.close();
      await audit.flush();
      await sharedThrottle.close();
      await workspace.close();
    },
  };
}
