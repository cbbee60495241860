/**
 * An agent's registration and heartbeat (agent.ts): the first registration
 * from the agent's own thread, then beats from a thread of their own
 * (beat-worker.ts), so a busy agent keeps its lease. Should the thread not
 * start, the agent's own thread beats.
 */
import { Worker } from "node:worker_threads";
import * as pb from "@merge/proto";
import type { BeatReport, BeatSetup } from "./beat-worker.ts";
import { measureHost } from "./measure.ts";

export interface Heartbeat {
  /** Resolves once the facility has taken a registration. */
  registered: Promise<void>;
  stop(): Promise<void>;
}

/** An agent whose thread has not ticked for this long is stuck: its beats stop, and its lease runs out. */
const STALL_MS = 30_000;

/** The worker's entry: through tsx when this runs from TypeScript sources (workers do not inherit its hooks). */
function beatThread(setup: BeatSetup): Worker {
  const entry = new URL(`./beat-worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url).href;
  if (!entry.endsWith(".ts")) return new Worker(new URL(entry), { workerData: setup });
  const tsx = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true, workerData: setup });
}

export async function startHeartbeat(o: {
  setup: Omit<BeatSetup, "stallMs">;
  log: (m: string) => void;
}): Promise<Heartbeat> {
  const { name } = o.setup.request;
  let lastError = "";
  let resolveRegistered: () => void = () => {};
  const registered = new Promise<void>((r) => {
    resolveRegistered = r;
  });
  const reported = (r: BeatReport) => {
    if (r.ok) {
      if (lastError) o.log(`${name}: registered again with ${o.setup.registry} (${r.state})`);
      lastError = "";
      resolveRegistered();
    } else {
      if (r.error !== lastError) o.log(`${name}: cannot register with ${o.setup.registry}: ${r.error}`);
      lastError = r.error;
    }
  };
  const tls = {
    ca: Buffer.from(o.setup.tls.ca),
    cert: Buffer.from(o.setup.tls.cert),
    key: Buffer.from(o.setup.tls.key),
  };
  const registry = pb.tlsClient(pb.HostRegistryService, o.setup.registry, tls);
  const beatHere = async () => {
    try {
      const res = await registry.registerHost(
        { ...o.setup.request, ...measureHost(o.setup.dataDir) },
        { timeoutMs: 5000 },
      );
      reported({ ok: true, state: res.state });
    } catch (e) {
      reported({ ok: false, error: (e as Error).message });
    }
  };
  await beatHere();
  // Until the thread beats (it takes a moment to load), and for good if it cannot start: beats from here.
  let here: NodeJS.Timeout | undefined = setInterval(() => void beatHere(), o.setup.heartbeatMs);
  const stopHere = () => {
    clearInterval(here);
    here = undefined;
  };
  let stopped = false;
  const worker = beatThread({ ...o.setup, stallMs: STALL_MS });
  worker.on("message", (r: BeatReport) => {
    stopHere();
    if (!stopped) reported(r);
  });
  worker.on("error", (e) => o.log(`${name}: the heartbeat thread failed: ${e.message}`));
  worker.on("exit", () => {
    if (stopped) return;
    o.log(`${name}: the heartbeat thread ended; beating from the agent's thread`);
    here ??= setInterval(() => void beatHere(), o.setup.heartbeatMs);
  });
  worker.unref();
  const tick = setInterval(() => worker.postMessage(0), 1000);
  tick.unref();
  return {
    registered,
    stop: async () => {
      stopped = true;
      stopHere();
      clearInterval(tick);
      await worker.terminate();
    },
  };
}
