/**
 * Problems found in a facility model or resource internet: each names the
 * element it is about (`switch leaf3`, `cable n1/eth0~leaf/swp1`,
 * `tags.vlan.xpnet`) and says what is wrong in the operator's terms. The
 * builder and the checker both name elements through the helpers here, so
 * neither imports the other for them.
 */
import type { Port, Resource } from "@merge/xir";
import { MergeError } from "@merge/xir/errors";

export type Severity = "error" | "warning";

export interface Problem {
  severity: Severity;
  /** The element the problem is about, e.g. `node n1`, `port n1.eth0`, `resources[3].ports[0].capacity`. */
  element: string;
  message: string;
  /** Where in a source file, `facility.json:12:9`, when known. */
  at?: string;
}

export function formatProblem(p: Problem): string {
  return `${p.severity}: ${p.at ? `${p.at}: ` : ""}${p.element}: ${p.message}`;
}

export function errorsOf(problems: readonly Problem[]): Problem[] {
  return problems.filter((p) => p.severity === "error");
}

/** Thrown by `build()` and loaders when a model has errors; carries every one. */
export class FacilityModelError extends MergeError<"facility-model"> {
  constructor(
    readonly subject: string,
    readonly problems: readonly Problem[],
  ) {
    const shown = problems.slice(0, 20).map((p) => `  ${formatProblem(p)}`);
    if (problems.length > 20) shown.push(`  ... and ${problems.length - 20} more`);
    super(
      "facility-model",
      "invalid",
      `${subject}: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n${shown.join("\n")}`,
    );
  }
}

/**
 * Where a port named the builder's way probably sits: `swpN` at N-1 on a switch.
 * Checked by the caller; saves a name index per switch on big facilities.
 */
export function numberedPort(name: string): number {
  if (name.length < 4 || name.charCodeAt(0) !== 115 || !name.startsWith("swp")) return -1;
  const n = Number(name.slice(3));
  return Number.isInteger(n) && n > 0 ? n - 1 : -1;
}

/** `node n1`, `switch ileaf`, `infrapod-server ifr0`: how problems name a resource. */
export function describe(r: Pick<Resource, "id" | "kind">): string {
  return `${r.kind} ${r.id}`;
}

/** A short list of port names for error messages: `eth0, eth1, swp1..swp48`. */
export function portList(ports: readonly Pick<Port, "name">[]): string {
  if (ports.length === 0) return "no ports";
  const names = ports.map((p) => p.name);
  if (names.length <= 6) return names.join(", ");
  return `${names.slice(0, 3).join(", ")}, ... ${names.slice(-2).join(", ")} (${names.length} ports)`;
}

/**
 * The index of a resource's port by name (the first, if named twice), or -1:
 * the builder's `swpN` guess first, a scan for a few ports, else a name index
 * kept on `e` (big switches have hundreds).
 */
export function portIndexOf(e: { res: Pick<Resource, "ports">; byName?: Map<string, number> }, name: string): number {
  const ports = e.res.ports;
  const guess = numberedPort(name);
  if (guess >= 0 && guess < ports.length && (ports[guess] as Port).name === name) return guess;
  if (ports.length <= 12) {
    for (let i = 0; i < ports.length; i++) if ((ports[i] as Port).name === name) return i;
    return -1;
  }
  if (!e.byName) {
    e.byName = new Map();
    for (let i = ports.length - 1; i >= 0; i--) e.byName.set((ports[i] as Port).name, i);
  }
  return e.byName.get(name) ?? -1;
}
