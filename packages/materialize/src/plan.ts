/**
 * The materialization plan: everything a realization asks of its facilities,
 * resolved once. Per facility, its fragments with every value already chosen
 * (node → resource and infranet address, link → segments and tags, emulation per
 * direction in base units, infrapod and infranet). The portal computes it when
 * a materialization is created, stores it, and every later step — delivery,
 * retries, status, node operations, dematerialize — reads it. Pure and
 * deterministic: the same inputs give a byte-identical plan.
 */
import type { Experiment, Facility, Interconnect, Realization } from "@merge/xir";
import { type Fragment, fragmentHosts } from "./fragment.ts";
import { fragmentsFor, PlanError } from "./fragments.ts";

export interface FacilityPlan {
  facility: string;
  /** The resources its fragments route by, sorted (what notify-incoming, status and teardown name). */
  resources: string[];
  /** The facility hosts its fragments land on, sorted (`""`: the facility's own machine). */
  hosts: string[];
  fragments: Fragment[];
}

export interface MaterializationPlan {
  /** The materialization id, `realization.experiment.project`. */
  mzid: string;
  /** One per facility the realization touches, in the order of its infranets. */
  facilities: FacilityPlan[];
}

/** The facilities a realization touches, each once, in the order of its infranets. */
export function planFacilities(rlz: Realization): string[] {
  return [...new Set(rlz.infranets.map((i) => i.facility))];
}

/**
 * Realization + experiment + the models of the facilities it touches → the
 * plan. `interconnects` (the wide-area links between them) give the latency
 * the wide area adds to external links, which their emulators then leave out.
 */
export function planMaterialization(
  rlz: Realization,
  xp: Experiment,
  facilities: readonly Facility[],
  interconnects: readonly Interconnect[] = [],
): MaterializationPlan {
  const models = new Map(facilities.map((f) => [f.name, f]));
  return {
    mzid: rlz.id,
    facilities: planFacilities(rlz).map((name) => {
      const model = models.get(name);
      if (!model) throw new PlanError(`realization ${rlz.id} uses facility '${name}', whose model was not given`);
      const fragments = fragmentsFor(rlz, xp, model, interconnects);
      return {
        facility: name,
        resources: [...new Set(fragments.map((f) => f.resource))].sort(),
        hosts: [...new Set(fragments.flatMap(fragmentHosts))].sort(),
        fragments,
      };
    }),
  };
}

/** Where a plan puts something: the facility, and the resource its requests route by. */
export interface Placement {
  facility: string;
  resource: string;
  /** The facility host carrying it; absent: the facility's own machine. */
  host?: string;
}

/** The facility and resource carrying an experiment node (the machine, or the hypervisor of a VM). */
export function nodePlacement(plan: MaterializationPlan, node: string): Placement | undefined {
  for (const fp of plan.facilities) {
    for (const f of fp.fragments) {
      if (f.op === "node.setup" && f.node.node === node)
        return { facility: fp.facility, resource: f.resource, ...(f.node.host ? { host: f.node.host } : {}) };
    }
  }
  return undefined;
}

/**
 * Where a link is emulated: its emulator's facility and resource. `undefined`
 * when the plan has no such link; `emulator: undefined` when it has the link
 * but nothing emulates it.
 */
export function linkPlacement(
  plan: MaterializationPlan,
  link: string,
): { emulator: Placement | undefined } | undefined {
  let found = false;
  for (const fp of plan.facilities) {
    for (const f of fp.fragments) {
      if (f.op === "emulation.setup" && f.emulation.links.some((l) => l.link === link)) {
        return {
          emulator: {
            facility: fp.facility,
            resource: f.resource,
            ...(f.emulation.host ? { host: f.emulation.host } : {}),
          },
        };
      }
      if (f.op === "link.create" && f.link.link === link) found = true;
    }
  }
  return found ? { emulator: undefined } : undefined;
}

/** The experiment nodes or links a plan carries, for "did you mean" lists. */
export function planNames(plan: MaterializationPlan, kind: "node" | "link"): string[] {
  const out = new Set<string>();
  for (const fp of plan.facilities) {
    for (const f of fp.fragments) {
      if (kind === "node" && f.op === "node.setup") out.add(f.node.node);
      if (kind === "link" && f.op === "link.create") out.add(f.link.link);
    }
  }
  return [...out];
}

/** How a user reaches a node, as the plan resolved it. */
export interface NodeAddresses {
  node: string;
  /** Experiment addresses in CIDR form, in socket order (from the XIR sockets). */
  addresses: string[];
  /** The node's address on the infranet (no prefix length). */
  infranet: string;
  /** OS image; absent: the facility's default. */
  image?: string;
  /** The facility host running it; absent: the facility's own machine. */
  host?: string;
}

/** Every node's addresses and image, by node name. */
export function planNodeAddresses(plan: MaterializationPlan): Map<string, NodeAddresses> {
  const out = new Map<string, NodeAddresses>();
  for (const fp of plan.facilities) {
    for (const f of fp.fragments) {
      if (f.op !== "node.setup") continue;
      const n = f.node;
      const sockets = [...n.interfaces].sort((a, b) => a.socket - b.socket);
      out.set(n.node, {
        node: n.node,
        addresses: sockets.flatMap((i) => i.addrs),
        infranet: n.infranet.address,
        ...(n.image ? { image: n.image } : {}),
        ...(n.host ? { host: n.host } : {}),
      });
    }
  }
  return out;
}
