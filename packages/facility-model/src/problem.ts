/**
 * Problems found in a facility model or resource internet: each names the
 * element it is about (`switch leaf3`, `cable n1/eth0~leaf/swp1`,
 * `tags.vlan.xpnet`) and says what is wrong in the operator's terms.
 */
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
export class FacilityModelError extends Error {
  constructor(
    readonly subject: string,
    readonly problems: readonly Problem[],
  ) {
    const shown = problems.slice(0, 20).map((p) => `  ${formatProblem(p)}`);
    if (problems.length > 20) shown.push(`  ... and ${problems.length - 20} more`);
    super(`${subject}: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n${shown.join("\n")}`);
    this.name = "FacilityModelError";
  }
}
