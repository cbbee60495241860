/**
 * The agent's heartbeat, in a thread of its own (heartbeat.ts starts it): the
 * agent's own thread may be busy for seconds at a time on a loaded host
 * (forking iproute2 and the containers' starters, scanning /proc), and a beat
 * that waits for it lets the agent's lease run out while it is working. Beats
 * stop when the agent's thread has not ticked for `stallMs`: an agent that is
 * stuck is down.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as pb from "@merge/proto";
import { measureHost } from "./measure.ts";

export interface BeatSetup {
  registry: string;
  tls: { ca: Uint8Array; cert: Uint8Array; key: Uint8Array };
  request: { name: string; endpoint: string; underlay: string; pid: number; started: string };
  dataDir: string;
  heartbeatMs: number;
  stallMs: number;
}

/** What the thread tells the agent after each beat. */
export type BeatReport = { ok: true; state: string } | { ok: false; error: string };

const setup = workerData as BeatSetup;
const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const registry = pb.tlsClient(pb.HostRegistryService, setup.registry, {
  ca: buf(setup.tls.ca),
  cert: buf(setup.tls.cert),
  key: buf(setup.tls.key),
});
let ticked = Date.now();
parentPort?.on("message", () => {
  ticked = Date.now();
});

async function beat(): Promise<void> {
  if (Date.now() - ticked > setup.stallMs) return;
  let report: BeatReport;
  try {
    const res = await registry.registerHost(
      { ...setup.request, ...measureHost(setup.dataDir) },
      { timeoutMs: Math.max(setup.heartbeatMs * 2, 5000) },
    );
    report = { ok: true, state: res.state };
  } catch (e) {
    report = { ok: false, error: (e as Error).message };
  }
  parentPort?.postMessage(report);
}

setInterval(() => void beat(), setup.heartbeatMs);
void beat();
