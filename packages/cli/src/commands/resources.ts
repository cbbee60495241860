// The resource table of `mrg list resources` and `mergectl list resources`:
// per testbed node, whether room is left, cores and memory used of total, and
// who holds it (those you may see by name, the rest counted).
import type { Resource } from "@merge/portal/client";
import { formatQuantity } from "@merge/xir/browser";

export const RESOURCE_COLUMNS = ["facility", "id", "kind", "state", "cores", "memory", "holders"] as const;

type Row = Record<(typeof RESOURCE_COLUMNS)[number], string>;

/** One table row; `users`: name the user beside each realization (administrators see them all). */
export function resourceRow(r: Resource, users = false): Row {
  const held = r.holders.map((h) => (users ? `${h.realization} (${h.user})` : h.realization));
  if (r.otherHolders > 0) held.push(`${r.otherHolders} of other projects`);
  return {
    facility: r.facility,
    id: r.id,
    kind: r.kind,
    state: r.state,
    cores: `${r.cores.used}/${r.cores.total} used`,
    memory: `${formatQuantity(r.memory.used, "bytes")}/${formatQuantity(r.memory.total, "bytes")} used`,
    holders: held.join(", "),
  };
}

/** Room left for another node: nothing on it, or virtual machines with cores and memory to spare. */
export const hasRoom = (r: Resource): boolean => r.state === "free" || r.state === "shared";
