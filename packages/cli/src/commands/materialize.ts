// mrg materialize | dematerialize <rlz.exp.proj>, mrg show materialization <rlz.exp.proj>:
// materializations through the portal, with a live progress bar.
import { ApiError, describeControl, describeProfile, type MaterializationStatus as Status } from "@merge/portal/client";
import Table from "cli-table3";
import type { Command } from "commander";
import {
  action,
  CliError,
  type OutputFlags,
  parseName,
  plural,
  portalOptions,
  done as printDone,
  signedIn,
  UsageError,
} from "../client.ts";

interface Flags extends OutputFlags {
  portal?: string;
  wait?: boolean;
  timeout?: string;
}

/** The materialization of a realization through the portal API (the portal client has no call for it). */
export async function mzCall<T>(f: { portal?: string }, method: string, id: string): Promise<T> {
  const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
  const c = signedIn(f);
  const path = `/projects/${proj}/experiments/${exp}/realizations/${rlz}/materialization`;
  let res: Response;
  try {
    res = await fetch(c.baseUrl + path, { method, headers: { authorization: `Bearer ${c.token}` } });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new ApiError(
      0,
      "unreachable",
      `cannot reach the portal at ${c.baseUrl}: ${cause?.code ?? cause?.message ?? (e as Error).message}`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: string; message?: string };
  if (!res.ok)
    throw new ApiError(res.status, body.error ?? "http_error", body.message ?? `${res.status} ${res.statusText}`);
  return body;
}

/** --timeout in seconds, checked before anything is asked of the portal. */
function timeoutOf(f: Flags): number {
  const t = Number(f.timeout ?? "600");
  if (!(t > 0)) throw new UsageError(`--timeout '${f.timeout}': expected seconds > 0, e.g. --timeout 300`);
  return t;
}

function problems(s: Status): string[] {
  const out: string[] = [];
  for (const f of s.facilities) {
    if (f.error)
      out.push(`${f.facility}: ${f.error}${f.nextAttempt ? ` (retry ${f.attempts + 1} at ${f.nextAttempt})` : ""}`);
    for (const a of f.failed)
      out.push(`${f.facility}: ${a.task}/${a.action} (${a.kind} ${a.target}): ${a.error} [attempts ${a.attempts}]`);
  }
  return out;
}

/** Poll status with a progress bar until `done` says so; returns the last status (undefined: gone). */
async function follow(
  f: Flags,
  id: string,
  done: (s: Status | undefined) => boolean,
  what: string,
): Promise<Status | undefined> {
  const deadline = Date.now() + timeoutOf(f) * 1000;
  const tty = process.stderr.isTTY && !f.json;
  // Without a terminal (CI logs, scripts): one line per change instead of a bar.
  let said = "";
  const { default: progress } = await import("cli-progress");
  const bar = new progress.SingleBar({
    format: `${what} {bar} {value}/{total} actions | {status}`,
    hideCursor: true,
    noTTYOutput: false,
  });
  let started = false;
  let last: Status | undefined;
  for (;;) {
    let s: Status | undefined;
    try {
      s = await mzCall<Status>(f, "GET", id);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    last = s;
    if (tty) {
      const total = Math.max(1, s?.actions ?? 1);
      if (!started) {
        bar.start(total, 0, { status: s?.status ?? "gone" });
        started = true;
      }
      bar.setTotal(total);
      bar.update(s ? s.complete : total, { status: s ? s.status : "gone" });
    } else if (!f.json) {
      const line = s ? `${what} ${id}: ${s.complete}/${s.actions} actions, ${s.status}` : `${what} ${id}: gone`;
      if (line !== said) process.stderr.write(`${line}\n`);
      said = line;
    }
    if (done(s)) break;
    // A failed action (rex has retried teardown ones already) waits for an operator: no point waiting out the timeout.
    if (s?.facilities.some((x) => x.failed.length)) break;
    if (Date.now() > deadline) {
      if (started) bar.stop();
      throw new CliError(
        `${id}: still ${s?.status ?? "gone"} after ${f.timeout ?? 600} s; see 'mrg show materialization ${id}'`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  if (started) bar.stop();
  return last;
}

function show(f: Flags, s: Status): void {
  if (f.json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const head = new Table({ style: { head: [], border: [] } });
  head.push({ materialization: s.id }, { status: s.status }, { progress: `${s.complete}/${s.actions} actions` });
  const fac = new Table({
    head: ["facility", "reachable", "status", "attempts", "error"],
    style: { head: [], border: [] },
  });
  for (const x of s.facilities) fac.push([x.facility, x.reachable ? "yes" : "no", x.status, x.attempts, x.error ?? ""]);
  const nodes = new Table({
    head: ["node", "facility", "resource", "state", "power", "action", "error"],
    style: { head: [], border: [] },
  });
  for (const n of s.nodes) {
    const state = n.current === n.target ? n.current : `${n.current}→${n.target}`;
    const error = [n.error, n.powerError && `power: ${n.powerError}`].filter(Boolean).join("; ");
    nodes.push([n.node, n.facility, n.resource, state, n.power || "", n.action, error]);
  }
  // How to reach each node: experiment addresses, infranet address, image.
  const reach = new Table({ head: ["node", "addresses", "infranet", "image"], style: { head: [], border: [] } });
  for (const n of s.nodes) {
    reach.push([n.node, n.addresses?.join(" ") ?? "", n.infranet ?? "", n.image ?? "(facility default)"]);
  }
  // What each virtual node actually got (its facility's report): only when some node has one.
  const profiled = s.nodes.filter((n) => n.profile);
  const profiles = new Table({ head: ["node", "profile"], style: { head: [], border: [] } });
  for (const n of profiled) profiles.push([n.node, describeProfile(n.profile!)]);
  const links = new Table({
    head: ["link", "facility", "emulated", "external", "action", "error"],
    style: { head: [], border: [] },
  });
  for (const l of s.links) {
    const emulated = l.emulation ? `yes${l.emulation.toward?.length ? " (by direction: mrg emu show)" : ""}` : "no";
    const external = l.external?.length ? `EXTERNAL: to ${l.external.join(", ")}` : "";
    links.push([l.link, l.facility, emulated, external, l.action, l.error ?? ""]);
  }
  // Nodes on shared hosts: reached from outside through their host's NAT.
  const natted = s.nodes.filter((n) => n.control);
  const control = new Table({ head: ["node", "from outside (NAT)"], style: { head: [], border: [] } });
  for (const n of natted) control.push([n.node, describeControl(n.control!)]);
  const tables = [
    head,
    fac,
    nodes,
    ...(s.nodes.length ? [reach] : []),
    ...(profiled.length ? [profiles] : []),
    ...(natted.length ? [control] : []),
    links,
  ];
  process.stdout.write(`${tables.map((t) => t.toString()).join("\n")}\n`);
  if (s.links.some((l) => l.external?.length))
    process.stdout.write("  warning: EXTERNAL links cross facilities: their traffic crosses shared wide-area links\n");
  const p = problems(s);
  if (p.length) process.stderr.write(`${p.map((x) => `  ${x}`).join("\n")}\n`);
}

/** How materialize and dematerialize wait for the facilities: the same two options. */
function waitOptions(c: Command): Command {
  return c
    .option("--no-wait", "return once the portal has the request")
    .option("--timeout <seconds>", "give up waiting after this long", "600");
}

export function registerMaterialize(program: Command): void {
  portalOptions(
    waitOptions(
      program
        .command("materialize <rlz.exp.proj>")
        .summary("build an accepted realization on its facilities")
        .description("materialize an accepted realization on its facilities, with a progress bar until it is active"),
    ),
  ).action(
    action(async (id: string, f: Flags) => {
      timeoutOf(f);
      try {
        await mzCall(f, "POST", id);
      } catch (e) {
        // The portal says the state; say the command that gets out of it.
        const state = e instanceof ApiError ? /is (pending|failed); only an accepted/.exec(e.message)?.[1] : undefined;
        if (state === "pending") throw new CliError(`${(e as Error).message}: mrg accept ${id}`);
        if (state === "failed")
          throw new CliError(`${(e as Error).message}; realize again: mrg relinquish ${id} && mrg realize ${id}`);
        throw e;
      }
      if (f.wait === false) return printDone(f, `materializing ${id}`, { id, status: "materializing" });
      const s = await follow(f, id, (s) => s?.status === "active", "materializing");
      if (!s) throw new CliError(`${id} was dematerialized while materializing`);
      if (s.status !== "active") {
        show(f, s);
        process.exitCode = 1;
        process.stderr.write(`${id} is in error; an operator can clear, complete or mask the failed actions (cog)\n`);
      } else if (f.json) show(f, s);
      else
        process.stdout.write(
          `${id} is active: ${plural(s.nodes.length, "node")}, ${plural(s.links.length, "link")}; run commands with mrg exec <node> ${id} -- <command>\n`,
        );
    }),
  );

  portalOptions(
    waitOptions(
      program
        .command("dematerialize <rlz.exp.proj>")
        .summary("tear a materialization down")
        .description("tear a materialization down; waits until the facilities confirm"),
    ),
  ).action(
    action(async (id: string, f: Flags) => {
      timeoutOf(f);
      await mzCall(f, "DELETE", id);
      if (f.wait === false) return printDone(f, `dematerializing ${id}`, { id, status: "dematerializing" });
      const left = await follow(f, id, (s) => s === undefined, "dematerializing");
      if (left) {
        show(f, left);
        process.exitCode = 1;
        process.stderr.write(
          `${id}: teardown stopped at failed actions; an operator can clear, complete or mask them (cog)\n`,
        );
        return;
      }
      printDone(f, `${id} is dematerialized; its resources stay reserved until: mrg relinquish ${id}`, {
        id,
        status: "dematerialized",
      });
    }),
  );

  const showCmd =
    program.commands.find((c) => c.name() === "show") ?? program.command("show").description("show things");
  portalOptions(
    showCmd.command("materialization <rlz.exp.proj>").description("status per facility, node and link"),
  ).action(action(async (id: string, f: Flags) => show(f, await mzCall<Status>(f, "GET", id))));
}
