/**
 * A realization as text: node → resource, link → waypoints with their tags.
 * What `mrg realize --local` prints.
 */
import { type EmulationValues, formatQuantity, type Realization, type Waypoint } from "@merge/xir";

export function formatEmbedding(r: Realization): string {
  const lines: string[] = [`realization ${r.id}`, "", "nodes:"];
  const width = Math.max(4, ...r.nodes.map((n) => n.node.length));
  for (const n of r.nodes) {
    const slice =
      n.mode === "virtual"
        ? ` vm ${n.alloc.cores} cores, ${formatQuantity(n.alloc.memory, "bytes")} memory, ${formatQuantity(n.alloc.disk, "bytes")} disk`
        : " bare metal";
    const ifs = n.interfaces.map((i) => `${i.socket}:${i.port}${i.virtual ? "(virtual)" : ""}${tags(i)}`).join(" ");
    lines.push(`  ${n.node.padEnd(width)}  ${n.facility}/${n.resource} ${slice}${ifs ? `  [${ifs}]` : ""}`);
  }
  lines.push("", "links:");
  for (const l of r.links) {
    const notes = [
      l.capacity > 0 ? `reserves ${formatQuantity(l.capacity, "bps")}` : "",
      l.emulator ? `emulated at ${l.emulator.facility}/${l.emulator.resource}` : "",
      ...(l.emulation ? values(l.emulation) : []),
      ...(l.emulation?.toward ?? []).map((t) => `toward ${t.node}: ${values(t).join(" ")}`),
      l.external ? "EXTERNAL: crosses facilities" : "",
    ].filter(Boolean);
    lines.push(`  ${l.link}${notes.length ? ` (${notes.join(", ")})` : ""}`);
    for (const s of l.segments) {
      const who = s.endpoints.map((e) => `${e.node}.${e.socket}`).join(" ~ ");
      lines.push(`    ${who}: ${s.waypoints.map(waypoint).join(" → ")}`);
    }
  }
  lines.push("", "infranets:");
  for (const i of r.infranets) lines.push(`  ${i.facility}: vni ${i.vni}, infrapod on ${i.infrapodServer}`);
  return lines.join("\n");
}

/** `rate 2 Mbit/s`, `latency 30 ms`, `loss 1%`: the values set, in that order. */
function values(e: EmulationValues): string[] {
  return [
    e.capacity !== undefined ? `rate ${formatQuantity(e.capacity, "bps")}` : "",
    e.latency !== undefined ? `latency ${formatQuantity(e.latency, "ns")}` : "",
    e.loss !== undefined ? `loss ${formatQuantity(e.loss, "fraction")}` : "",
  ].filter(Boolean);
}

function waypoint(w: Waypoint): string {
  return `${w.resource}:${w.port}${tags(w)}`;
}

function tags(t: { vlan?: number; vni?: number }): string {
  const parts = [t.vlan !== undefined ? `vlan ${t.vlan}` : "", t.vni !== undefined ? `vni ${t.vni}` : ""].filter(
    Boolean,
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}
