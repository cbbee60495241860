// cog model check|show: load a facility model (or resource internet) from JSON,
// a TypeScript module or a sample, validate it and summarize it.
import { writeFile } from "node:fs/promises";
import {
  type FacilitySummary,
  formatProblem,
  type LoadedModel,
  loadModel,
  MODEL_SOURCE_FORMS,
  ModelSourceError,
  type Problem,
  resourceDetail,
  summarize,
} from "@merge/facility-model";
import { type Facility, formatQuantity, formatValue, type Interconnect, type ResourceInternet } from "@merge/xir";
import Table from "cli-table3";
import type { Command } from "commander";
import { plural } from "../client.ts";
import { loadTypeScript } from "../typescript.ts";

const SOURCE_HELP = MODEL_SOURCE_FORMS;

export function register(program: Command): void {
  const model = program.command("model").description("facility resource models: validate and summarize");

  model
    .command("check <source>")
    .description(`validate a facility model or resource internet; exit 1 when it has errors\n  source: ${SOURCE_HELP}`)
    .option("--json", "print {source, kind, ok, problems, summary} as JSON")
    .option("--all", "list every problem (by default the first 200 errors and 50 warnings)")
    .action(async (source: string, opts: { json?: boolean; all?: boolean }) => {
      const loaded = await load(source);
      if (!loaded) return;
      const errors = loaded.problems.filter((p) => p.severity === "error");
      const summaries = summariesOf(loaded);
      if (opts.json) {
        const ok = errors.length === 0;
        process.stdout.write(
          `${JSON.stringify({ source, kind: loaded.kind, ok, problems: loaded.problems, summary: summaries }, null, 2)}\n`,
        );
      } else {
        printProblems(loaded.problems, opts.all ?? false);
        for (const s of summaries) console.log(oneLine(s));
        const warnings = loaded.problems.length - errors.length;
        console.log(
          `${source}: ${errors.length ? "INVALID" : "ok"}, ${plural(errors.length, "error")}, ${plural(warnings, "warning")}`,
        );
        if (looksLikeExperiment(loaded)) console.log(EXPERIMENT_HINT);
      }
      if (errors.length) process.exitCode = 1;
    });

  model
    .command("show <source>")
    .description(`summarize a facility model or resource internet as tables\n  source: ${SOURCE_HELP}`)
    .option("--json", "print the model itself as XIR JSON (e.g. to save a sample)")
    .option("--out <file>", "write the model as XIR JSON to a file")
    .option(
      "--resource <id>",
      "show one resource: properties, and where each port is cabled (facility/id in an internet)",
    )
    .action(async (source: string, opts: { json?: boolean; out?: string; resource?: string }) => {
      const loaded = await load(source);
      if (!loaded) return;
      if (loaded.kind === "invalid") {
        printProblems(loaded.problems, true);
        console.error(`${source}: not a valid XIR facility model or resource internet`);
        if (looksLikeExperiment(loaded)) console.error(EXPERIMENT_HINT);
        process.exitCode = 1;
        return;
      }
      const doc: Facility | ResourceInternet = loaded.kind === "facility" ? loaded.facility : loaded.internet;
      if (opts.resource !== undefined) {
        const facilities = loaded.kind === "facility" ? [loaded.facility] : loaded.internet.facilities;
        const interconnects = loaded.kind === "internet" ? loaded.internet.interconnects : [];
        if (!printResource(facilities, interconnects, opts.resource)) {
          console.error(`cog model: ${source} has no resource ${opts.resource}`);
          process.exitCode = 1;
        }
        return;
      }
      if (opts.out) {
        await writeFile(opts.out, `${JSON.stringify(doc, null, 2)}\n`);
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
        return;
      }
      if (loaded.kind === "internet") printInternet(loaded.internet, loaded.problems);
      else printFacility(summarize(loaded.facility, loaded.problems));
      if (opts.out) console.log(`wrote ${opts.out}`);
    });
}

async function load(source: string): Promise<LoadedModel | undefined> {
  try {
    // A facility model in TypeScript runs in this process.
    if (/\.[mc]?ts$/.test(source)) await loadTypeScript();
    return await loadModel(source);
  } catch (e) {
    if (e instanceof ModelSourceError) {
      console.error(`cog model: ${e.message}`);
      process.exitCode = 1;
      return undefined;
    }
    throw e;
  }
}

const EXPERIMENT_HINT =
  "this is an experiment model (nodes and links), not a facility: check it with 'mrg compile <model>'";

/** An experiment given where a facility was expected: its nodes/links are "not a known field". */
function looksLikeExperiment(loaded: LoadedModel): boolean {
  return (
    loaded.kind === "invalid" &&
    loaded.problems.some((p) => /^(nodes|links): is not a known field/.test(formatProblem(p).replace(/^\w+: /, "")))
  );
}

function summariesOf(loaded: LoadedModel): FacilitySummary[] {
  if (loaded.kind === "facility") return [summarize(loaded.facility, loaded.problems)];
  if (loaded.kind === "internet") {
    return loaded.internet.facilities.map((f) =>
      summarize(
        f,
        loaded.problems.filter((p) => p.element.startsWith(`facility ${f.name}: `)),
      ),
    );
  }
  return [];
}

/** Without --all, the first 200 errors and 50 warnings: a broken 100,000-node model would flood the terminal. */
const SHOWN = { error: 200, warning: 50 } as const;

function printProblems(problems: readonly Problem[], all: boolean): void {
  const seen = { error: 0, warning: 0 };
  for (const p of problems) {
    if (++seen[p.severity] > SHOWN[p.severity] && !all) continue;
    console.log(formatProblem(p));
  }
  if (all) return;
  for (const severity of ["error", "warning"] as const) {
    const more = seen[severity] - SHOWN[severity];
    if (more > 0) console.log(`... and ${more} more ${severity}s (--all lists them)`);
  }
}

function oneLine(s: FacilitySummary): string {
  const kinds = Object.entries(s.byKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(", ");
  return `facility ${s.name}: ${s.resources} resources (${kinds}), ${s.cables} cables, ${s.nodes.both + s.nodes.virtual} hypervisors, ${s.cores} cores, ${formatQuantity(s.memory, "bytes")} memory`;
}

const COMPACT = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

function table(head: string[]): Table.Table {
  return new Table({ head, chars: COMPACT, style: { head: [], border: [] } });
}

function printFacility(s: FacilitySummary): void {
  console.log(`facility ${s.name}`);
  const overview = new Table({ chars: COMPACT, style: { head: [], border: [] } });
  overview.push(
    ["resources", String(s.resources)],
    ...Object.entries(s.byKind)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => [`  ${k}`, String(n)]),
    ["testbed nodes", String(s.nodes.total)],
    ["  bare metal only", String(s.nodes.physical)],
    ["  hypervisor only", String(s.nodes.virtual)],
    ["  both", String(s.nodes.both)],
    ["cores", String(s.cores)],
    ["memory", formatQuantity(s.memory, "bytes")],
    ["disk", formatQuantity(s.disk, "bytes")],
    ["GPUs", String(s.gpus)],
    [
      "platforms",
      Object.entries(s.platforms)
        .map(([p, n]) => `${p} ${n}`)
        .join(", ") || "-",
    ],
    [
      "ports",
      `${s.ports} (${Object.entries(s.portsByRole)
        .map(([r, n]) => `${r} ${n}`)
        .join(", ")})`,
    ],
    ["cables", String(s.cables)],
    ["gateway ports", String(s.gatewayPorts)],
    ["VNIs", String(s.vnis)],
    ["problems", `${plural(s.problems.errors, "error")}, ${plural(s.problems.warnings, "warning")}`],
  );
  console.log(overview.toString());

  if (s.hardware.length) {
    const hw = table([
      "hardware",
      "nodes",
      "hypervisors",
      "cores",
      "memory",
      "disk",
      "GPUs",
      "platform",
      "xpnet ports",
    ]);
    for (const h of s.hardware) {
      hw.push([
        h.name,
        String(h.count),
        String(h.hypervisors),
        String(h.cores),
        formatQuantity(h.memory, "bytes"),
        formatQuantity(h.disk, "bytes"),
        h.gpus ? `${h.gpus} ${h.gpuModel ?? ""}`.trim() : "-",
        h.platform,
        h.xpnetPorts ? `${h.xpnetPorts} x ${formatQuantity(h.xpnetCapacity, "bps")}` : "-",
      ]);
    }
    console.log(hw.toString());
  }
  if (s.switches.length) {
    const sw = table(["network", "layer", "switches", "VXLAN-capable", "ports"]);
    for (const x of s.switches) sw.push([x.network, x.layer, String(x.count), String(x.vxlan), String(x.ports)]);
    console.log(sw.toString());
  }
  if (s.vlanPools.length) {
    const pools = table(["VLAN domain", "VLAN ids"]);
    const shown = s.vlanPools.slice(0, 20);
    for (const p of shown) pools.push([p.domain, String(p.ids)]);
    if (s.vlanPools.length > shown.length) pools.push([`... ${s.vlanPools.length - shown.length} more`, ""]);
    console.log(pools.toString());
  }
}

/** `id`, or `facility/id` to pick a facility of an internet. */
function printResource(
  facilities: readonly Facility[],
  interconnects: readonly Interconnect[],
  which: string,
): boolean {
  const slash = which.indexOf("/");
  const [facility, id] = slash >= 0 ? [which.slice(0, slash), which.slice(slash + 1)] : [undefined, which];
  for (const f of facilities) {
    if (facility !== undefined && f.name !== facility) continue;
    const d = resourceDetail(f, id);
    if (!d) continue;
    const r = d.resource;
    console.log(`${r.kind} ${r.id} (facility ${f.name})${r.alloc.length ? `: alloc ${r.alloc.join(", ")}` : ""}`);
    if (r.switch) {
      console.log(
        `${r.switch.network} ${r.switch.layer}, ${r.switch.vxlan ? "VXLAN-capable" : "VLAN only"}, VLAN domain ${r.switch.vlanDomain}`,
      );
    }
    const props = Object.entries(r.props);
    if (props.length) {
      const t = table(["property", "value"]);
      for (const [k, v] of props) t.push([k, formatValue(k, v)]);
      console.log(t.toString());
    }
    const t = table(["port", "role", "capacity", "model", "mac", "cabled to", "cable"]);
    for (const p of d.ports) {
      // A gateway port leads out of the facility through an interconnect instead of a cable.
      const ic = interconnects.find(
        (x) =>
          (x.a.facility === f.name && x.a.resource === r.id && x.a.port === p.port.name) ||
          (x.b.facility === f.name && x.b.resource === r.id && x.b.port === p.port.name),
      );
      const far = ic && (ic.a.facility === f.name && ic.a.resource === r.id ? ic.b : ic.a);
      t.push([
        p.port.name,
        p.port.role,
        formatQuantity(p.port.capacity, "bps"),
        p.port.model ?? "-",
        p.port.mac ?? "-",
        p.peer ? `${p.peer.resource}.${p.peer.port}` : far ? `${far.facility}/${far.resource}.${far.port}` : "-",
        p.cable ?? (ic ? `interconnect ${ic.id}` : "-"),
      ]);
    }
    console.log(t.toString());
    return true;
  }
  return false;
}

function printInternet(internet: ResourceInternet, problems: readonly Problem[]): void {
  console.log(`resource internet: ${plural(internet.facilities.length, "facility", "facilities")}`);
  const t = table([
    "facility",
    "resources",
    "nodes",
    "hypervisors",
    "cores",
    "memory",
    "cables",
    "gateway ports",
    "problems",
  ]);
  for (const f of internet.facilities) {
    const s = summarize(
      f,
      problems.filter((p) => p.element.startsWith(`facility ${f.name}: `)),
    );
    t.push([
      s.name,
      String(s.resources),
      String(s.nodes.total),
      String(s.nodes.both + s.nodes.virtual),
      String(s.cores),
      formatQuantity(s.memory, "bytes"),
      String(s.cables),
      String(s.gatewayPorts),
      `${s.problems.errors}E ${s.problems.warnings}W`,
    ]);
  }
  console.log(t.toString());
  const ic = table(["interconnect", "a", "b", "capacity", "latency", "shared"]);
  for (const x of internet.interconnects) {
    ic.push([
      x.id,
      `${x.a.facility}/${x.a.resource}.${x.a.port}`,
      `${x.b.facility}/${x.b.resource}.${x.b.port}`,
      formatQuantity(x.capacity, "bps"),
      formatQuantity(x.latency, "ns"),
      x.shared ? "yes" : "no",
    ]);
  }
  console.log(ic.toString());
  const own = problems.filter((p) => !p.element.startsWith("facility "));
  if (own.length) for (const p of own) console.log(formatProblem(p));
}
