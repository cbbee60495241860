// mrg emu set <link|tag> <rlz.exp.proj> --latency 30ms --loss 1% --capacity 50mbps [--toward <node>],
// mrg emu show <rlz.exp.proj>: change emulated links at runtime (in seconds, no
// re-materialization) and show what they run now. Every value needs its unit
// (@merge/xir's parseQuantity); the API gets base units (latencyNs, capacityBps, lossFraction).
import { type ApiEmulationValues, type ApiLinkEmulation, type PortalClient, xirEmulation } from "@merge/portal/client";
import {
  acceptedUnits,
  type EmulationValues,
  type Experiment,
  formatQuantity,
  type LinkEmulation,
  parseQuantity,
  type Scalar,
  type Unit,
} from "@merge/xir/browser";
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

/** A quantity as typed (`30ms`, `50Mbit`, `1%`) → base units; a bare number or a wrong unit is a usage error (exit 2) listing the units accepted. */
function parseFlag(flag: string, text: string, unit: Unit): number {
  try {
    return parseQuantity(text, unit, { what: flag });
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
}

const show = (v: number | undefined, unit: Unit) => (v === undefined ? "" : formatQuantity(v, unit));

function describe(e: EmulationValues | undefined): { latency: string; loss: string; capacity: string } {
  return { latency: show(e?.latency, "ns"), loss: show(e?.loss, "fraction"), capacity: show(e?.capacity, "bps") };
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

const tagsOf = (v: Scalar | Scalar[] | undefined): Scalar[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/**
 * The links `name` stands for in the realization's model: the link of that
 * name, or else, as MergeTB's moacmd did, every link whose `properties.tags`
 * holds it (published models tag links, `link.properties["tags"] = ("wan",)`,
 * to change them together). Neither: the name as given, for the portal to refuse.
 */
async function linksNamed(
  portal: PortalClient,
  proj: string,
  exp: string,
  rlz: string,
  name: string,
): Promise<string[]> {
  const { revision } = await portal.realization(proj, exp, rlz);
  const x = (await portal.revision(proj, exp, revision)).xir as Experiment | null;
  if (!x || x.links.some((l) => l.name === name)) return [name];
  const tagged = x.links.filter((l) => tagsOf(l.properties.tags).includes(name)).map((l) => l.name);
  return tagged.length ? tagged : [name];
}

export function registerEmu(program: Command): void {
  const emu = program.command("emu").description("change and show link emulation of a materialization at runtime");
  portalOptions(
    emu
      .command("set <link> <rlz.exp.proj>")
      .description(
        "change an emulated link (options left out keep their values); in every direction, or with --toward only toward one node; <link> may also be a tag in links' properties.tags (every link tagged changes)",
      )
      .option(
        "--latency <duration>",
        `one-way latency, e.g. 30ms (round trip is twice this); units: ${acceptedUnits("ns")}`,
      )
      .option("--loss <percent>", "loss, e.g. 1%")
      .option("--capacity <rate>", `capacity, e.g. 50Mbit; units: ${acceptedUnits("bps")}`)
      .option("--toward <node>", "change only the direction toward this endpoint's node (what the link delivers to it)")
      .addHelpText(
        "after",
        `
Examples:
  mrg emu set wan r1.demo.admin --latency 30ms
  mrg emu set wan r1.demo.admin --loss 1% --capacity 50mbps
  mrg emu set wan r1.demo.admin --toward c0 --capacity 2mbps    # only what reaches c0
  mrg emu set slow r1.lab.admin --latency 50ms    # every link tagged "slow" (properties.tags)
  mrg emu show r1.demo.admin`,
      ),
  ).action(
    action(async (link: string, id: string, f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      const change: ApiEmulationValues = {};
      if (f.latency !== undefined) change.latencyNs = Math.round(parseFlag("--latency", f.latency, "ns"));
      if (f.loss !== undefined) change.lossFraction = parseFlag("--loss", f.loss, "fraction");
      if (f.capacity !== undefined) change.capacityBps = parseFlag("--capacity", f.capacity, "bps");
      if (!Object.keys(change).length) throw new UsageError("nothing to set: give --latency, --loss and/or --capacity");
      if (f.toward !== undefined && !f.toward.trim()) throw new UsageError("--toward: expected a node name");
      const portal = signedIn(f);
      const links = await linksNamed(portal, proj, exp, rlz, link);
      const done = [];
      for (const l of links) done.push(await portal.setEmulation(proj, exp, rlz, l, change, f.toward));
      // One link (named, or the only one tagged): its result as before; a tag on several: all of them.
      const [only] = done;
      if (f.json) print(f, only && done.length === 1 ? only : done, ["link"]);
      else
        print(
          f,
          done.flatMap((r) =>
            directionRows(xirEmulation(r.emulation)).map((d) => ({ link: r.link, emulator: r.emulator, ...d })),
          ),
          ["link", "emulator", "toward", "latency", "loss", "capacity"],
        );
    }),
  );
  portalOptions(emu.command("show <rlz.exp.proj>").description("links and the emulation each runs now")).action(
    action(async (id: string, f: Flags) => {
      const body = await mzCall<{ links?: { link: string; facility: string; emulation?: ApiLinkEmulation }[] }>(
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
          directionRows(l.emulation && xirEmulation(l.emulation)).map((d) => ({
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
