/**
 * Prometheus metrics of a facility process (prom-client), served as text on
 * a plain HTTP listener of their own (`serveMetrics`, loopback by default:
 * the facility API is mutual TLS for portals, and a scraper holds no facility
 * certificate; bind it elsewhere only behind the operator's own network rules).
 *
 *   merge_commander_requests_total{method,code}            facility API calls by portals and drivers
 *   merge_commander_request_duration_seconds{method}       their latency
 *   merge_rex_actions_total{worker,outcome}                actions finished: complete | error | lost
 *   merge_rex_action_duration_seconds{outcome}             claim to outcome, per action
 *   merge_facility_task_duration_seconds{phase}            first action started to last action complete, per task
 *   merge_facility_materializations{phase}                 materializations the store holds (at scrape)
 *   merge_facility_tasks{state}                            tasks of those: done | running | failed (at scrape)
 *   merge_facility_*  process_* nodejs_*                   the process (prom-client's defaults, prefixed)
 *
 * Rex actions per second: rate(merge_rex_actions_total[1m]).
 */
import { createServer, type Server } from "node:http";
import type { Interceptor } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import type { Store } from "@merge/store";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { listenOn } from "./port.ts";
import type { RexEvent } from "./rex.ts";
import { type Action, impliedCount, keys, parseKey, type Task } from "./task.ts";

const SECONDS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300];

export class FacilityMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"method" | "code">;
  private readonly latency: Histogram<"method">;
  private readonly actions: Counter<"worker" | "outcome">;
  private readonly actionSeconds: Histogram<"outcome">;
  private readonly taskSeconds: Histogram<"phase">;
  /** Action start times by action key and worker. */
  private readonly started = new Map<string, number>();
  /** Tasks with an action started and not yet seen complete: `mzid task` → first start. */
  private readonly openTasks = new Map<string, { mzid: string; task: string; at: number }>();

  constructor(private readonly store?: Store) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "merge_facility_" });
    this.requests = new Counter({
      name: "merge_commander_requests_total",
      help: "Facility API calls, by method and gRPC code",
      labelNames: ["method", "code"],
      registers,
    });
    this.latency = new Histogram({
      name: "merge_commander_request_duration_seconds",
      help: "Facility API call latency",
      labelNames: ["method"],
      buckets: SECONDS,
      registers,
    });
    this.actions = new Counter({
      name: "merge_rex_actions_total",
      help: "Actions rex finished, by worker and outcome (complete, error, lost)",
      labelNames: ["worker", "outcome"],
      registers,
    });
    this.actionSeconds = new Histogram({
      name: "merge_rex_action_duration_seconds",
      help: "Seconds from claiming an action to its outcome",
      labelNames: ["outcome"],
      buckets: SECONDS,
      registers,
    });
    const self = this;
    this.taskSeconds = new Histogram({
      name: "merge_facility_task_duration_seconds",
      help: "Seconds from a task's first action starting to its last completing",
      labelNames: ["phase"],
      buckets: SECONDS,
      registers,
      // Tasks finished since the last scrape are observed now: no store reads on rex's path.
      collect: () => self.closeTasks(),
    });
    new Gauge({
      name: "merge_facility_materializations",
      help: "Materializations the facility's store holds, by phase",
      labelNames: ["phase"],
      registers,
      async collect() {
        if (!self.store) return;
        this.reset();
        for (const kv of await self.store.range(keys.mzPrefix)) {
          const p = parseKey(kv.key);
          if (p.type === "info") this.inc({ phase: (JSON.parse(kv.value) as { phase: string }).phase });
        }
      },
    });
    new Gauge({
      name: "merge_facility_tasks",
      help: "Tasks of the materializations held: done, running, failed (an action in error, unmasked)",
      labelNames: ["state"],
      registers,
      async collect() {
        if (!self.store) return;
        this.reset();
        const byTask = new Map<string, { done: boolean; failed: boolean; keyed: number }>();
        const tasks: [string, Task][] = [];
        for (const kv of await self.store.range(keys.mzPrefix)) {
          const p = parseKey(kv.key);
          if (p.type === "task") tasks.push([`${p.mzid} ${p.task}`, JSON.parse(kv.value) as Task]);
          if (p.type !== "action") continue;
          const a = JSON.parse(kv.value) as Pick<Action, "state" | "masked">;
          const t = byTask.get(`${p.mzid} ${p.task}`) ?? { done: true, failed: false, keyed: 0 };
          t.keyed++;
          if (!a.masked && a.state !== "complete") t.done = false;
          if (!a.masked && a.state === "error") t.failed = true;
          byTask.set(`${p.mzid} ${p.task}`, t);
        }
        // A task with actions that have no key yet (pending: impliedAction) is running.
        for (const [k, task] of tasks) {
          const t = byTask.get(k) ?? { done: true, failed: false, keyed: 0 };
          if (impliedCount(task, t.keyed)) t.done = false;
          byTask.set(k, t);
        }
        for (const t of byTask.values()) this.inc({ state: t.failed ? "failed" : t.done ? "done" : "running" });
      },
    });
  }

  /** The rex journal (RexOptions.onEvent) feeds the action and task figures. */
  rexEvent = (e: RexEvent): void => {
    if (e.type === "discarded") return;
    const id = `${e.worker} ${e.key}`;
    const now = performance.now();
    if (e.type === "start") {
      this.started.set(id, now);
      const p = parseKey(e.key);
      if (p.type === "action" && !this.openTasks.has(`${p.mzid} ${p.task}`))
        this.openTasks.set(`${p.mzid} ${p.task}`, { mzid: p.mzid, task: p.task, at: Date.now() });
      return;
    }
    const outcome = e.type;
    this.actions.inc({ worker: e.worker, outcome });
    const t0 = this.started.get(id);
    this.started.delete(id);
    if (t0 !== undefined) this.actionSeconds.observe({ outcome }, (now - t0) / 1000);
  };

  /** Observes the duration of every open task that is now complete (at scrape: no store reads on rex's path). */
  private async closeTasks(): Promise<void> {
    if (!this.store) return;
    for (const [k, t] of this.openTasks) {
      const actions = (await this.store.range(`${keys.actions(t.mzid)}${encodeURIComponent(t.task)}/`)).map(
        (kv) => JSON.parse(kv.value) as Action,
      );
      const stored = await this.store.get(keys.task(t.mzid, t.task));
      if (actions.length === 0 && !stored) {
        this.openTasks.delete(k); // gone (dematerialized): not a duration
        continue;
      }
      const task = stored ? (JSON.parse(stored.value) as Task) : undefined;
      // Actions with no key yet are pending (impliedAction).
      if (task && impliedCount(task, actions.length)) continue;
      if (!actions.every((a) => a.masked || a.state === "complete")) continue;
      const phase = task?.phase ?? "setup";
      const end = Math.max(...actions.map((a) => Date.parse(a.updated)));
      this.taskSeconds.observe({ phase }, Math.max(0, end - t.at) / 1000);
      this.openTasks.delete(k);
    }
  }

  /** A Connect interceptor counting and timing each call (the commander's servers). */
  interceptor: Interceptor = (next) => async (req) => {
    const end = this.latency.startTimer({ method: req.method.name });
    try {
      const res = await next(req);
      this.requests.inc({ method: req.method.name, code: "ok" });
      return res;
    } catch (err) {
      this.requests.inc({ method: req.method.name, code: err instanceof ConnectError ? String(err.code) : "unknown" });
      throw err;
    } finally {
      end();
    }
  };
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `registry` at `/metrics` on plain HTTP (loopback unless `host` says otherwise). */
export async function serveMetrics(
  registry: Registry,
  opts: { host?: string; port?: number } = {},
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics: ${err.message}\n`),
    );
  });
  const { authority } = await listenOn(server, opts.host ?? "127.0.0.1", opts.port);
  return {
    url: `http://${authority}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
