// mrg emu set <link> <rlz.exp.proj> --latency 30ms --loss 1% --capacity 50mbps [--toward <node>],
// mrg emu show <rlz.exp.proj>: change emulated links at runtime (in seconds, no
// re-materialization) and show what they run now.
import type { EmulationValues, LinkEmulation } from "@merge/portal/client";
import type { Command } from "commander";
import { action, type OutputFlags, parseName, portalOptions, print, signedIn, UsageError } from "../client.ts";
import { mzCall } from "./materialize.ts";

interface Flags extends OutputFlags {
  portal?: string;
  latency?: string;
  loss?: string;
  capacity?: string;
  toward?: string;
}

const TIME: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000 };
const RATE: Record<string, number> = { bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9, k: 1e3, m: 1e6, g: 1e9 };

/** One-way latency in ms from `30ms`, `1.5s`, `500us` (a bare number is ms). */
export function parseLatency(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`--latency '${s}': expected a duration such as 30ms, 1.5s or 500us`);
  return Number(m[1]) * TIME[(m[2] ?? "ms").toLowerCase()]!;
}

/** Loss as a fraction from `1%` or `0.01`. */
export function parseLoss(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(%)?$/.exec(s.trim());
  const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN;
  if (!(v >= 0 && v <= 1)) throw new UsageError(`--loss '${s}': expected a percentage 0..100% (1%) or a fraction 0..1`);
  return v;
}

/** Capacity in bits/s from `50mbps`, `1gbps`, `100k` (a bare number is bits/s). */
export function parseCapacity(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(bps|kbps|mbps|gbps|k|m|g)?$/i.exec(s.trim());
  const v = m ? Number(m[1]) * RATE[(m[2] ?? "bps").toLowerCase()]! : Number.NaN;
  if (!(v > 0)) throw new UsageError(`--capacity '${s}': expected a rate such as 50mbps, 1gbps or 100kbps`);
  return v;
}

function describe(e: EmulationValues | undefined): { latency: string; loss: string; capacity: string } {
  return {
    latency: e?.latency === undefined ? "" : `${+e.latency.toFixed(3)}ms`,
    loss: e?.loss === undefined ? "" : `${+(e.loss * 100).toFixed(4)}%`,
    capacity: e?.capacity === undefined ? "" : `${+(e.capacity / 1e6).toFixed(3)}mbps`,
  };
}

/**
 * One row for the link's own values (toward "all"), then one per direction set
 * apart with what it runs (the link's values, its own in their place).
 */
function directionRows(
  e: LinkEmulation | undefined,
): { toward: string; latency: string; loss: string; capacity: string }[] {
  if (!e) return [{ toward: "", ...describe(undefined) }];
  const { toward = [], ...link } = e;
  return [
    { toward: toward.length ? "all" : "both ways", ...describe(link) },
    ...toward.map(({ node, ...own }) => ({ toward: node, ...describe({ ...link, ...own }) })),
  ];
}

export function registerEmu(program: Command): void {
  const emu = program.command("emu").description("change and show link emulation of a materialization at runtime");
  portalOptions(
    emu
      .command("set <link> <rlz.exp.proj>")
      .description(
        "change an emulated link (options left out keep their values); in every direction, or with --toward only toward one node",
      )
      .option("--latency <duration>", "one-way latency, e.g. 30ms (round trip is twice this)")
      .option("--loss <rate>", "loss, e.g. 1% or 0.01")
      .option("--capacity <rate>", "capacity, e.g. 50mbps")
      .option("--toward <node>", "change only the direction toward this endpoint's node (what the link delivers to it)")
      .addHelpText(
        "after",
        `
Examples:
  mrg emu set wan r1.demo.admin --latency 30ms
  mrg emu set wan r1.demo.admin --loss 1% --capacity 50mbps
  mrg emu set wan r1.demo.admin --toward c0 --capacity 2mbps    # only what reaches c0
  mrg emu show r1.demo.admin`,
      ),
  ).action(
    action(async (link: string, id: string, f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      const change: EmulationValues = {};
      if (f.latency !== undefined) change.latency = parseLatency(f.latency);
      if (f.loss !== undefined) change.loss = parseLoss(f.loss);
      if (f.capacity !== undefined) change.capacity = parseCapacity(f.capacity);
      if (!Object.keys(change).length) throw new UsageError("nothing to set: give --latency, --loss and/or --capacity");
      if (f.toward !== undefined && !f.toward.trim()) throw new UsageError("--toward: expected a node name");
      const r = await signedIn(f).setEmulation(proj, exp, rlz, link, change, f.toward);
      if (f.json) print(f, r, ["link"]);
      else
        print(
          f,
          directionRows(r.emulation).map((d) => ({ link: r.link, emulator: r.emulator, ...d })),
          ["link", "emulator", "toward", "latency", "loss", "capacity"],
        );
    }),
  );
  portalOptions(emu.command("show <rlz.exp.proj>").description("links and the emulation each runs now")).action(
    action(async (id: string, f: Flags) => {
      const body = await mzCall<{ links?: { link: string; facility: string; emulation?: LinkEmulation }[] }>(
        f,
        "GET",
        id,
      );
      const links = body.links ?? [];
      if (f.json)
        return print(
          f,
          links.map((l) => ({ link: l.link, emulation: l.emulation ?? null })),
          ["link"],
        );
      print(
        f,
        links.flatMap((l) =>
          directionRows(l.emulation).map((d) => ({
            link: l.link,
            facility: l.facility,
            emulated: l.emulation ? "yes" : "no",
            ...d,
          })),
        ),
        ["link", "facility", "emulated", "toward", "latency", "loss", "capacity"],
      );
    }),
  );
}
