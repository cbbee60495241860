/**
 * Removing nodes in batches. Rex tears a materialization down one action per
 * node, tens of them at once on a host agent; each used to look through all
 * of /proc for what runs in its node's namespace (hundreds of full scans for
 * a few hundred nodes), wait for its own processes to die and delete its own
 * namespace. Here the removals asked while a batch runs go into the next one
 * (any materializations): one /proc scan for all their namespaces, one wait
 * for every process to end, one `netns del` batch. Each caller is told how its
 * own node fared.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Coalescer } from "./coalesce.ts";
import { nodeDir, nodePid, nodeWipe, ownTool } from "./container.ts";
import type { Env } from "./env.ts";
import { namesOf } from "./names.ts";
import { killAll, listNetns, processesIn } from "./processes.ts";
import { vmRemove } from "./vm.ts";

export interface NodeRemoval {
  prefix: string;
  node: string;
}

interface Job extends NodeRemoval {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** How long a batch waits for its processes to end after SIGKILL (as `killAll`). */
const KILL_WAIT_MS = 5000;

/** Stops, wipes and deletes nodes for one data plane (one `Env`), a batch at a time. */
export class NodeRemover {
  /** The next batch is stopped while this one's namespaces are deleted (the kernel's part). */
  private readonly batches = new Coalescer<Job>(async (batch) => {
    const tell = (errors: (Error | undefined)[]) => {
      for (const [i, j] of batch.entries()) {
        const e = errors[i];
        if (e) j.reject(e);
        else j.resolve();
      }
    };
    const stopped = await stopNodes(this.env, batch).catch((e: Error) => {
      tell(batch.map(() => e));
      return undefined;
    });
    if (stopped) void deleteNamespaces(this.env, batch, stopped).then(tell);
  });

  constructor(private readonly env: Env) {}

  /**
   * Stop a node for good (its VM or container, and every other process in its network namespace except our own
   * iproute2 batches visiting it), drop its writable layer and delete its namespace. Idempotent.
   */
  remove(prefix: string, node: string): Promise<void> {
    return new Promise((resolve, reject) => this.batches.add({ prefix, node, resolve, reject }));
  }
}

/** What `stopNodes` leaves to `deleteNamespaces`: each node's error so far, and the namespaces to delete. */
interface Stopped {
  errors: (Error | undefined)[];
  namespaces: string[];
}

const nsOf = (x: NodeRemoval) => namesOf(x.prefix).node(x.node);

/** Stop the nodes (every process in their namespaces) and drop their writable layers. */
async function stopNodes(env: Env, nodes: NodeRemoval[]): Promise<Stopped> {
  const errors: (Error | undefined)[] = nodes.map(() => undefined);
  // VMs (a few, each its own QMP conversation) and containers' inits, which take their pid namespace along.
  await Promise.all(
    nodes.map((x, i) =>
      vmRemove(env, x.prefix, x.node).catch((e: Error) => {
        errors[i] = e;
      }),
    ),
  );
  const pids = new Map<number, number>();
  for (const [i, x] of nodes.entries()) {
    const pid = nodePid(env, x.prefix, x.node);
    if (pid) pids.set(pid, i);
  }
  // Whatever else runs in the nodes' namespaces (a process that escaped the pid namespace, e.g. an exec), found
  // in one look through /proc, but not our own iproute2 batches working in them meanwhile (a link teardown in
  // parallel): killed, they fail that action, and a failed teardown action stalls the dematerialize.
  const index = new Map<string, number>();
  for (const [i, x] of nodes.entries()) if (!errors[i]) index.set(nsOf(x), i);
  for (const p of processesIn([...index.keys()]))
    if (!pids.has(p.pid) && !ownTool(p.pid)) pids.set(p.pid, index.get(p.netns) as number);
  // One that outlives SIGKILL (stuck in the kernel) does not hold the rest up: the infrapod's sweep looks again.
  await killAll([...pids.keys()], KILL_WAIT_MS);
  const gone: string[] = [];
  const have = new Set(listNetns());
  for (const [i, x] of nodes.entries()) {
    if (errors[i]) continue;
    try {
      rmSync(join(nodeDir(env, x.prefix, x.node), "pid"), { force: true });
      nodeWipe(env, x.prefix, x.node);
    } catch (e) {
      errors[i] = e as Error;
      continue;
    }
    if (have.has(nsOf(x))) gone.push(nsOf(x));
  }
  return { errors, namespaces: gone };
}

/** Delete the stopped nodes' namespaces (one batch); the error of each node, in order. */
async function deleteNamespaces(env: Env, nodes: NodeRemoval[], stopped: Stopped): Promise<(Error | undefined)[]> {
  const errors = [...stopped.errors];
  if (stopped.namespaces.length === 0) return errors;
  try {
    await env.ip.submit(stopped.namespaces.map((ns) => `netns del ${ns}`));
  } catch (e) {
    // Which ones failed: those whose name is still there.
    const still = new Set(listNetns());
    for (const [i, x] of nodes.entries())
      if (!errors[i] && still.has(nsOf(x))) errors[i] = new Error(`node ${x.node}: ${(e as Error).message}`);
  }
  return errors;
}
