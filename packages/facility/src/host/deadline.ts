/**
 * Every call rex makes to a host agent has a deadline: an agent that stops
 * answering without its host going down (a stopped process whose lease has
 * not run out yet, a backend call stuck in the kernel) would otherwise hold
 * the action, and the materialization, for ever. The error says, in the
 * user's terms, which host did not finish which operation.
 */
import { MergeError } from "@merge/xir/errors";
import type { AgentMethod } from "./agent.ts";

/** The default deadline of one agent call: a node's setup on a loaded host takes seconds, rarely a minute. */
export const AGENT_CALL_MS = 120_000;

/** Calls whose work covers a whole host or materialization there (every node of it): this many deadlines. */
const HOST_WIDE: Partial<Record<AgentMethod, number>> = { reconcile: 5, infrapodDestroy: 5, harborEnsure: 5 };

/** How long a call of `method` may take, given the deadline of one call. */
export function deadlineOf(method: AgentMethod, callMs: number): number {
  return callMs * (HOST_WIDE[method] ?? 1);
}

export class AgentDeadlineError extends MergeError<"facility"> {
  constructor(host: string, operation: string, ms: number) {
    super(
      "facility",
      "agent-deadline",
      `host ${host} did not finish ${operation} within ${formatSeconds(ms)} (the facility's deadline for agent calls): its agent is not answering`,
    );
  }
}

const formatSeconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;

type Named = Partial<Record<"node" | "link" | "emulation" | "mzid" | "resource", unknown>>;
const field = (args: unknown[], i: number, key: keyof Named): string => {
  const a = args[i];
  const v = a && typeof a === "object" ? (a as Named)[key] : undefined;
  return typeof v === "string" ? v : "?";
};

/** Calls on one named node, link or emulation of a materialization: what they do to it. */
const ON_ONE = {
  nodeSetup: ["setting up", "node"],
  nodeReset: ["resetting", "node"],
  nodeRecycle: ["recycling", "node"],
  linkCreate: ["creating", "link"],
  linkDestroy: ["removing", "link"],
  emulationSetup: ["setting up", "emulation"],
  emulationUpdate: ["updating", "emulation"],
  emulationDestroy: ["removing", "emulation"],
} as const satisfies Partial<Record<AgentMethod, readonly [string, "node" | "link" | "emulation"]>>;
const onOne = (method: AgentMethod): method is keyof typeof ON_ONE => method in ON_ONE;

/** What an agent call does, as the materialization's user would say it. */
export function describeCall(method: AgentMethod, args: unknown[]): string {
  const mz = `of ${field(args, 0, "mzid")}`;
  if (onOne(method)) {
    const [doing, kind] = ON_ONE[method];
    return `${doing} ${kind} ${field(args, 0, kind)} ${mz}`;
  }
  switch (method) {
    case "infrapodNode":
      return `telling the infrapod ${mz} about node ${field(args, 0, "node")}`;
    case "nodePower":
      return `power ${typeof args[1] === "string" ? args[1] : "?"} of ${typeof args[0] === "string" ? args[0] : "?"}`;
    case "infrapodEnclave":
      return `creating the infrapod ${mz}`;
    case "infrapodServices":
      return `starting the infrapod's services ${mz}`;
    case "infrapodEntries":
      return `updating the infrapod's DHCP and DNS entries ${mz}`;
    case "infrapodDestroy":
      return `removing what it holds ${mz}`;
    case "infranetGateway":
      return `routing other facilities' infranets through its gateway ${mz}`;
    case "gatewayPeers":
      return `letting the peer facilities' gateways of ${typeof args[0] === "string" ? args[0] : "?"} in`;
    case "harborEnsure":
      return "bringing up its part of the harbor";
    case "activity":
      return `measuring the activity of the nodes of ${typeof args[0] === "string" ? args[0] : "?"}`;
    case "reconcile":
      return "sweeping materializations the facility no longer has";
  }
}
