#!/usr/bin/env -S node --import tsx
/**
 * Facility daemons as processes:
 *
 *   daemon.ts rex --store <url> [--backend sim] [--concurrency N] [--lease-ttl S]
 *                 [--sim-durations imaging,power,network,infrapod] [--journal file]
 *
 * Runs until SIGTERM/SIGINT (graceful: running actions finish, claims are
 * released). `--journal` appends one JSON line per rex outcome, for tests.
 */
import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { openStore } from "@merge/store";
import type { Backend } from "./backend.ts";
import { Rex } from "./rex.ts";
import { SimBackend, type SimDurations } from "./sim/sim.ts";

export class UsageError extends Error {}

function durations(s: string | undefined): Partial<SimDurations> | undefined {
  if (s === undefined) return undefined;
  const v = s.split(",").map(Number);
  if (v.length !== 4 || v.some((x) => !Number.isFinite(x) || x < 0)) {
    throw new UsageError(
      `--sim-durations '${s}': expected four ms values imaging,power,network,infrapod, e.g. 400,100,20,50`,
    );
  }
  return { imaging: v[0]!, power: v[1]!, network: v[2]!, infrapod: v[3]! };
}

async function rexMain(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      store: { type: "string" },
      backend: { type: "string", default: "sim" },
      concurrency: { type: "string", default: "64" },
      "lease-ttl": { type: "string", default: "10" },
      "sim-durations": { type: "string" },
      journal: { type: "string" },
      id: { type: "string" },
    },
  });
  if (!values.store) throw new UsageError("rex: --store <url> is required (sqlite:///dir, etcd://host:port)");
  let backend: Backend;
  if (values.backend === "sim") backend = new SimBackend({ durations: durations(values["sim-durations"]) });
  else throw new UsageError(`rex: --backend '${values.backend}' is not available here (sim)`);
  const store = openStore(values.store);
  const journal = values.journal;
  const rex = new Rex({
    store,
    backend,
    ...(values.id ? { id: values.id } : {}),
    concurrency: Number(values.concurrency),
    leaseTtl: Number(values["lease-ttl"]),
    log: (m) => console.error(m),
    onEvent: journal ? (e) => appendFileSync(journal, `${JSON.stringify({ ...e, pid: process.pid })}\n`) : undefined,
  });
  await rex.start();
  console.error(`rex ${rex.id}: running on ${store.backend} with the ${backend.name} backend`);
  const stop = async () => {
    await rex.stop();
    await backend.close();
    await store.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

const [cmd, ...rest] = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    if (cmd === "rex") await rexMain(rest);
    else throw new UsageError(`usage: daemon.ts rex --store <url> [options] (got '${cmd ?? ""}')`);
  } catch (err) {
    console.error(err instanceof UsageError ? err.message : err);
    process.exit(2);
  }
}
