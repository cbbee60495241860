/**
 * Names of kernel objects. Everything of a materialization carries its prefix
 * (`mg` + 6 hex digits of a hash of the materialization id), so cleanup finds
 * exactly what is ours and never touches anything else. Interface names must
 * fit in 15 characters; inside a node's own namespace they are plain (`eth0`
 * infranet, `eth<socket+1>` experiment) because a namespace is its own space.
 */
import { createHash } from "node:crypto";
import { NODE_NAME_RE } from "@merge/xir";

/** All prefixes look like this: `mg` and 6 lowercase hex digits. */
export const PREFIX_RE = /^mg[0-9a-f]{6}$/;

/**
 * Kernel object names are per machine. When several hosts of a facility share
 * one machine (hosts as network namespaces, for tests), each host agent
 * process qualifies its names with its host's name, so a materialization's
 * objects on two hosts never share a name and sweeping one host's never
 * touches another's. Unset (the facility's own machine, a real host): as before.
 */
let hostQualifier = "";
/** Told each prefix once, before any object of it exists (a fabric host's journal: fabric.ts sweeps by it). */
let onPrefix: ((prefix: string) => void) | undefined;
const told = new Set<string>();

/**
 * Qualify this process's kernel object names with a host name (the host
 * agent does, at start); `record` hears of each prefix before it is first used.
 */
export function qualifyNames(host: string, record?: (prefix: string) => void): void {
  hostQualifier = host;
  onPrefix = record;
  told.clear();
}

export function prefixOf(mzid: string): string {
  const prefix = prefixOn(mzid, hostQualifier);
  if (onPrefix && !told.has(prefix)) {
    onPrefix(prefix);
    told.add(prefix);
  }
  return prefix;
}

/** The prefix a materialization's objects have on a host whose agent qualifies its names with `host` ("": none). */
export function prefixOn(mzid: string, host: string): string {
  const key = host ? `${mzid}@${host}` : mzid;
  return `mg${createHash("sha256").update(key).digest("hex").slice(0, 6)}`;
}

export interface Names {
  prefix: string;
  /** Infrapod network namespace. */
  infrapod: string;
  /** Emulator network namespace (the links' halves meet here). */
  emulator: string;
  /** Experiment-network switch namespace (bridges of unemulated LANs). */
  xpnet: string;
  /** Host end of the infrapod's service veth. */
  serviceHost: string;
  /** A node's network namespace. */
  node(name: string): string;
}

/** Node names usable in namespace names and hostnames: the rule the compiler checks models by. */
export { NODE_NAME_RE };

export function namesOf(prefix: string): Names {
  if (!PREFIX_RE.test(prefix)) throw new Error(`bad prefix "${prefix}": expected mg + 6 hex digits`);
  return {
    prefix,
    infrapod: `${prefix}-i`,
    emulator: `${prefix}-e`,
    xpnet: `${prefix}-x`,
    serviceHost: `${prefix}s`,
    node: (name) => {
      if (!NODE_NAME_RE.test(name)) throw new Error(`bad node name "${name}": expected ${NODE_NAME_RE}`);
      return `${prefix}-n-${name}`;
    },
  };
}

/** Interface name inside a node for a socket. */
export const socketIfname = (socket: number): string => `eth${socket + 1}`;
/** The node's end of the infranet veth inside the infrapod namespace, by the node's infranet host number. */
export const infranetPort = (host: number): string => `n${host}`;
const short = (s: string): string => createHash("sha256").update(s).digest("hex").slice(0, 6);
/** A link endpoint's port in the emulator or xpnet namespace. */
export const linkKey = (link: string): string => `k${short(link)}`;
export const linkPort = (link: string, endpoint: number): string => `${linkKey(link)}p${endpoint}`;
export const lanBridge = (link: string): string => `${linkKey(link)}b`;

/** A stable locally administered MAC from a string. */
export function macOf(seed: string): string {
  const h = createHash("sha256").update(seed).digest();
  const b = [0x02, h[0] ?? 0, h[1] ?? 0, h[2] ?? 0, h[3] ?? 0, h[4] ?? 0];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}
