/**
 * Prometheus metrics of a portal replica (prom-client, one registry per
 * portal), at `GET /metrics`. Reading them needs a portal administrator's
 * token (a Prometheus scrape config sets `authorization: {credentials: <API
 * token>}`): route names, counts and the usage they reveal are operators'
 * business, not the public's.
 *
 *   merge_portal_http_requests_total{method,route,status}    requests by route pattern (not the raw URL)
 *   merge_portal_http_request_duration_seconds{method,route} latency by route
 *   merge_portal_realizations{state}                         realization records by state (at scrape)
 *   merge_portal_materializations{state}                     materializations by state (at scrape)
 *   merge_portal_leases_expired_total{outcome}               lease expiries: released | dematerializing
 *   merge_portal_notices_total{kind}                         notices sent
 *   merge_portal_*  (process, nodejs)                        the process (prom-client's defaults, prefixed)
 */
import type {} from "@fastify/swagger"; // its FastifySchema.hide
import type { Store } from "@merge/store";
import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { forbidden } from "./errors.ts";
import { keys } from "./objects.ts";

export class PortalMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"method" | "route" | "status">;
  readonly latency: Histogram<"method" | "route">;
  readonly leasesExpired: Counter<"outcome">;
  readonly notices: Counter<"kind">;

  constructor(store: Store) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "merge_portal_" });
    this.requests = new Counter({
      name: "merge_portal_http_requests_total",
      help: "API requests by method, route pattern and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.latency = new Histogram({
      name: "merge_portal_http_request_duration_seconds",
      help: "API request latency by method and route pattern",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.leasesExpired = new Counter({
      name: "merge_portal_leases_expired_total",
      help: "Leases that ran out: released at once, or dematerializing first",
      labelNames: ["outcome"],
      registers,
    });
    this.notices = new Counter({
      name: "merge_portal_notices_total",
      help: "Notices sent to users, by kind",
      labelNames: ["kind"],
      registers,
    });
    new Gauge({
      name: "merge_portal_realizations",
      help: "Realization records by state",
      labelNames: ["state"],
      registers,
      async collect() {
        this.reset();
        for (const s of ["pending", "accepted", "failed"]) this.set({ state: s }, 0);
        for (const kv of await store.range(keys.allRealizations())) {
          this.inc({ state: (JSON.parse(kv.value) as { state: string }).state });
        }
      },
    });
    new Gauge({
      name: "merge_portal_materializations",
      help: "Materializations by state (materializing, dematerializing)",
      labelNames: ["state"],
      registers,
      async collect() {
        this.reset();
        for (const s of ["materializing", "dematerializing"]) this.set({ state: s }, 0);
        for (const kv of await store.range(keys.allMaterializations())) {
          const v = JSON.parse(kv.value) as { state?: string };
          if (typeof v.state === "string") this.inc({ state: v.state });
        }
      },
    });
  }

  /** Counts and times every request by its route pattern (404s as `unmatched`). */
  install(app: FastifyInstance): void {
    app.addHook("onResponse", async (req, reply) => {
      const route = req.routeOptions.url ?? "unmatched";
      if (route === "/metrics") return;
      this.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
      this.latency.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    });
  }
}

/** `GET /metrics`: the registry as Prometheus text, for portal administrators. */
export async function metricsRoute(app: FastifyInstance, metrics: PortalMetrics): Promise<void> {
  app.get(
    "/metrics",
    {
      // Signed in and active (the hook); the handler asks for an administrator.
      config: { access: { object: "usage", action: "read", list: true } },
      schema: { hide: true },
    },
    async (req, reply) => {
      if (!req.principal?.user.admin)
        throw forbidden("metrics are for portal administrators (send an administrator's API token)");
      return reply.header("content-type", metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
}
