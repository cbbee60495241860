/**
 * What one realization attempt works on, passed explicitly to each step
 * (placement, routing, tagging, infranets): the inputs, what the attempt has
 * taken so far, and the problems it met.
 */
import type { Experiment } from "@merge/xir";
import type { AllocationRecord } from "./allocation.ts";
import type { Problem } from "./diagnosis.ts";
import type { Direction } from "./direction.ts";
import type { InternetIndex } from "./internet.ts";
import type { Placement, VmDefaults } from "./placement.ts";
import type { Usage } from "./usage.ts";

export interface RealizeOptions {
  /** The realization's name, `realization.experiment.project`. */
  id?: string;
  /** Size of a virtual machine where the node's constraints leave it open. */
  vmDefaults?: Partial<VmDefaults>;
  /** bits/s reserved for a link with no capacity constraint (default 0: best effort). */
  defaultLinkCapacity?: number;
  /** Stop collecting problems after this many (default 20). */
  maxProblems?: number;
  /** The experiment's canonical hash when the caller has it (a portal revision); computed otherwise. */
  experimentHash?: string;
  /**
   * When no mapping meets every constraint, also return the closest one found
   * (`closest` on the refusal) with every violated constraint listed. Never
   * a realization that can be accepted: the refusal stands.
   */
  bestEffort?: boolean;
  /** Seed of the placement search (default 1): the same input and seed give the same realization. */
  seed?: number;
  /**
   * What facility hosts' agents measured free now, per host: no virtual node
   * goes on a resource of such a host beyond the memory and disk free there
   * (on top of what the model and the allocation table leave). Cores are
   * time-shared, so a busy host still takes a node (they are reported, not a limit).
   */
  measured?: readonly MeasuredRoom[];
}

/** Free on one facility host, as its agent measured it: cores, bytes of memory and disk. */
export interface MeasuredRoom {
  facility: string;
  host: string;
  /** The facility model's resources on the host. */
  resources: readonly string[];
  cores: number;
  memory: number;
  disk: number;
}

/** What a link reserves. */
export interface LinkNeed {
  /** bits/s reserved on each cable per virtual network. */
  demand: number;
  minRate: number;
}

/** Problems of one attempt; past `max`, only counted. */
export class ProblemLog {
  readonly list: Problem[] = [];
  dropped = 0;
  constructor(private readonly max: number) {}

  /** Record a problem; past the maximum, one line at the end says how many more there were. */
  add(p: Problem): void {
    if (this.list.length < this.max) this.list.push(p);
    else this.dropped++;
  }

  /** Always recorded (structural problems that stop the attempt at once). */
  push(p: Problem): void {
    this.list.push(p);
  }

  get full(): boolean {
    return this.list.length >= this.max;
  }

  get any(): boolean {
    return this.list.length > 0;
  }

  /** The problems, with the count of those left out. */
  refusal(experiment: string): Problem[] {
    if (!this.dropped) return this.list;
    return [
      ...this.list,
      { element: "experiment", name: experiment, message: `and ${this.dropped} more problems like these` },
    ];
  }
}

/** The experiment as the engine sees it, fixed for every attempt at one realization. */
export interface Demand {
  readonly x: Experiment;
  readonly ix: InternetIndex;
  readonly id: string;
  readonly options: RealizeOptions;
  readonly vmDefaults: VmDefaults;
  /** Link name → what it reserves. */
  readonly linkNeed: ReadonlyMap<string, LinkNeed>;
  /** Link name → the directions its endpoints set apart (only links that have some). */
  readonly linkDirs: ReadonlyMap<string, Direction[]>;
  /** `node\u0000socket` → position of the socket in its node's sorted sockets. */
  readonly socketPos: ReadonlyMap<string, number>;
}

/** One attempt: the demand, what is taken (usage), and what the attempt has placed and recorded. */
export interface Attempt {
  readonly demand: Demand;
  readonly usage: Usage;
  readonly placed: Map<string, Placement>;
  readonly records: AllocationRecord[];
  readonly problems: ProblemLog;
  /** Links that found no route, in the order they were tried. */
  readonly failedLinks: string[];
  /** Keep going past problems to the closest mapping (links over-committed, unplaced nodes left out). */
  readonly bestEffort: boolean;
}
