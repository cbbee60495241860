/**
 * Link emulation at the emulator namespace, where each emulated link's halves
 * meet. Capacity: tbf on each port (shapes what leaves toward that endpoint).
 * Latency and loss: netem on each port when the kernel has it; otherwise
 * mrg-emu, a userspace forwarder joining the link's ports that delays every
 * frame by the latency of the port it leaves through and drops it with that
 * port's loss probability. Port k faces endpoint k, so what it applies is the
 * direction toward that endpoint's node: the link's values, or the direction's
 * own where the model set it apart (`toward`). With the link's values only,
 * both directions of a point-to-point link are alike (RTT = 2 × latency).
 * Changeable at runtime.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { type EmulationValues, emulationToward } from "@merge/xir";
import { run } from "./command.ts";
import { type Env, mzDir } from "./env.ts";
import { linkKey, linkPort, namesOf } from "./names.ts";
import { alive } from "./processes.ts";
import type { EmulationParams, LinkPlan } from "./record.ts";

const emuDir = (env: Env, prefix: string) => join(mzDir(env, prefix), "emu");
export const controlSocket = (env: Env, prefix: string, link: string): string =>
  join(emuDir(env, prefix), `${linkKey(link)}.sock`);

/** What each port applies (index = endpoint index): the direction toward that endpoint, checked. */
function portValues(link: LinkPlan, e: EmulationParams): EmulationValues[] {
  const nodes = new Set(link.endpoints.map((x) => x.node));
  for (const t of e.toward ?? []) {
    if (!nodes.has(t.node))
      throw new Error(
        `emulation of link ${link.name}: toward ${t.node}: not an endpoint of the link (endpoints: ${[...nodes].join(", ")})`,
      );
  }
  return link.endpoints.map((x) => {
    const v = emulationToward(e, x.node);
    checkParams(e.toward?.some((t) => t.node === x.node) ? `${link.name} toward ${x.node}` : link.name, v);
    return v;
  });
}

export function checkParams(link: string, p: EmulationValues): void {
  const bad = (what: string, v: unknown, want: string) => {
    throw new Error(`emulation of link ${link}: ${what} = ${JSON.stringify(v)} is invalid; expected ${want}`);
  };
  if (p.capacity !== undefined && !(Number.isFinite(p.capacity) && p.capacity >= 8000))
    bad("capacity", p.capacity, "bits/s ≥ 8000");
  if (p.latency !== undefined && !(Number.isFinite(p.latency) && p.latency >= 0 && p.latency <= 10e9))
    bad("latency", p.latency, "ns between 0 and 10 s");
  if (p.loss !== undefined && !(Number.isFinite(p.loss) && p.loss >= 0 && p.loss <= 1))
    bad("loss", p.loss, "a fraction between 0 and 1");
}

export function tbfLine(port: string, capacity: number | undefined): string {
  if (capacity === undefined) return `qdisc del dev ${port} root`;
  // Burst: at least two full frames, or 4 ms at the rate; a 50 ms queue.
  const burst = Math.max(3100, Math.ceil(capacity / 8 / 250));
  return `qdisc replace dev ${port} root tbf rate ${Math.round(capacity)}bit burst ${burst} latency 50ms`;
}

function netemLine(port: string, p: EmulationValues): string {
  const parts = [`qdisc replace dev ${port} root netem`, `delay ${Math.round((p.latency ?? 0) / 1000)}us`];
  if (p.loss) parts.push(`loss ${(p.loss * 100).toFixed(4)}%`);
  if (p.capacity) parts.push(`rate ${Math.round(p.capacity)}bit`);
  return parts.join(" ");
}

/** Talk to a running mrg-emu: one line in, its reply out. */
export function emuControl(path: string, line: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = "";
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`emulator control ${path}: no answer`));
    }, timeoutMs);
    s.setEncoding("utf8");
    s.on("connect", () => s.write(`${line}\n`));
    s.on("data", (d: string) => {
      out += d;
    });
    s.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on("close", () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

/**
 * emuRunning, asked only where the control socket exists: a new materialization's 49–199 forwarders were each
 * asked over a socket not made yet (a connect from node.js costs it ~2 ms), once before starting them and again
 * at every poll while they start.
 */
async function emuAnswering(path: string): Promise<boolean> {
  return existsSync(path) && (await emuRunning(path));
}

async function emuRunning(path: string): Promise<boolean> {
  try {
    await emuControl(path, "get", 500);
    return true;
  } catch {
    return false;
  }
}

/** Start emulating these links (idempotent: a running emulation gets the given parameters). */
export async function emulationStart(env: Env, prefix: string, links: LinkPlan[]): Promise<void> {
  const n = namesOf(prefix);
  mkdirSync(emuDir(env, prefix), { recursive: true });
  const tc: string[] = [];
  const forwarders: { link: string; ports: string[]; values: EmulationValues[] }[] = [];
  for (const l of links) {
    const values = portValues(l, l.emulation ?? {});
    const ports = l.endpoints.map((_, k) => linkPort(l.name, k));
    if (env.caps.netem) {
      tc.push(...ports.map((port, k) => netemLine(port, values[k]!)));
      continue;
    }
    ports.forEach((port, k) => {
      if (values[k]!.capacity !== undefined) tc.push(tbfLine(port, values[k]!.capacity));
    });
    forwarders.push({ link: l.name, ports, values });
  }
  await Promise.all([env.tcIn(n.emulator).submit(tc), startForwarders(env, prefix, forwarders)]);
}

async function startForwarders(
  env: Env,
  prefix: string,
  links: { link: string; ports: string[]; values: EmulationValues[] }[],
): Promise<void> {
  const fresh: Forwarder[] = [];
  await Promise.all(
    links.map(async ({ link, ports, values }) => {
      const sock = controlSocket(env, prefix, link);
      if (await emuAnswering(sock)) return setForwarder(sock, values);
      if (!env.bin.emu) throw new Error("no netem and no mrg-emu: latency and loss cannot be emulated here");
      fresh.push({
        bin: env.bin.emu,
        netns: namesOf(prefix).emulator,
        dir: emuDir(env, prefix),
        name: linkKey(link),
        ports,
        values,
        what: `link ${link}`,
      });
    }),
  );
  await spawnForwarders(fresh);
}

export interface Forwarder {
  /** The mrg-emu binary (`nativeProgram(dataDir, "mrg-emu")`). */
  bin: string;
  /** Network namespace holding the ports. */
  netns: string;
  /** Directory for its control socket (`<name>.sock`), pid file and log. */
  dir: string;
  name: string;
  ports: string[];
  /** What each port applies to the frames leaving through it (latency, loss; capacity is tbf's). */
  values: EmulationValues[];
  /** For errors: what it emulates. */
  what: string;
}

/**
 * Start mrg-emu joining `ports` (detached; its pid in `<dir>/<name>.pid`) and wait until it answers
 * on its control socket. Link emulation and the wide-area fixture (wan.ts) both use it.
 */
export async function spawnForwarder(f: Forwarder): Promise<number> {
  return (await spawnForwarders([f]))[0] ?? 0;
}

/**
 * Start these forwarders (see spawnForwarder) from one `mrg-emu -s`, a small process that forks and
 * execs each (forking node.js per forwarder cost milliseconds of its page tables each, the event loop
 * blocked); then wait until each answers. Resolves to their pids, in order.
 */
export async function spawnForwarders(fs: readonly Forwarder[]): Promise<number[]> {
  if (fs.length === 0) return [];
  const bin = fs[0]!.bin;
  const lines = fs.map((f) => {
    mkdirSync(f.dir, { recursive: true });
    const ports = f.ports.map(
      (port, k) => `${port}:${Math.round(f.values[k]?.latency ?? 0)}:${f.values[k]?.loss ?? 0}`,
    );
    return [join(f.dir, `${f.name}.log`), "-n", `/run/netns/${f.netns}`, "-c", join(f.dir, `${f.name}.sock`), ...ports];
  });
  for (const l of lines)
    if (l.some((a) => /\s/.test(a) || a === ""))
      throw new Error(`emulator arguments must not contain spaces: ${l.join(" ")}`);
  const r = await run(bin, ["-s"], { input: `${lines.map((l) => l.join(" ")).join("\n")}\n` });
  const said = r.stdout.split("\n").filter(Boolean);
  return Promise.all(
    fs.map(async (f, k) => {
      const pid = Number(said[k]);
      if (r.code !== 0 || !Number.isInteger(pid) || pid <= 0)
        throw new Error(
          `emulator for ${f.what} did not start: ${said[k] ?? `mrg-emu -s exited ${r.code}: ${r.stderr.trim()}`}`,
        );
      writeFileSync(join(f.dir, `${f.name}.pid`), `${pid}\n`);
      await untilAnswering(f, pid);
      return pid;
    }),
  );
}

async function untilAnswering(f: Forwarder, pid: number): Promise<void> {
  const sock = join(f.dir, `${f.name}.sock`);
  const logFile = join(f.dir, `${f.name}.log`);
  // Generous: it starts while a thousand containers do, on a host shared with others.
  const end = Date.now() + 30_000;
  let wait = 10;
  while (!(await emuAnswering(sock))) {
    const gone = !alive(pid);
    if (gone || Date.now() > end) {
      // The log goes with the materialization's sweep: say what it says.
      const said = existsSync(logFile) ? readFileSync(logFile, "utf8").trim().slice(-300) : "";
      const how = gone ? "exited" : "no answer on its control socket after 30 s";
      throw new Error(`emulator for ${f.what} did not start (${how})${said ? `: ${said}` : ""} (log ${logFile})`);
    }
    // Backing off: a materialization starts its emulators all at once (199 at 1000 nodes), each polled.
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 250);
  }
}

export async function setForwarder(sock: string, values: EmulationValues[]): Promise<void> {
  for (const [k, p] of values.entries()) {
    const r = await emuControl(sock, `set ${k} ${Math.round(p.latency ?? 0)} ${p.loss ?? 0}`);
    if (!r.startsWith("ok")) throw new Error(`emulator refused parameters: ${r.trim()}`);
  }
}

/** Change a running link emulation, in place (no re-materialization). */
export async function emulationUpdate(env: Env, prefix: string, link: LinkPlan, p: EmulationParams): Promise<void> {
  const values = portValues(link, p);
  const n = namesOf(prefix);
  const ports = link.endpoints.map((_, k) => linkPort(link.name, k));
  if (env.caps.netem) {
    await env.tcIn(n.emulator).submit(
      ports.map((port, k) => netemLine(port, values[k]!)),
      { tolerant: false },
    );
    return;
  }
  const sock = controlSocket(env, prefix, link.name);
  if (!(await emuRunning(sock))) throw new Error(`link ${link.name} is not emulated in this materialization`);
  await env.tcIn(n.emulator).submit(ports.map((port, k) => tbfLine(port, values[k]!.capacity)));
  await setForwarder(sock, values);
}

/** Per-port counters of a running forwarder: frames forwarded and dropped. */
export async function emulationStats(
  env: Env,
  prefix: string,
  link: string,
): Promise<{ port: number; latency: number; loss: number; forwarded: number; dropped: number }[]> {
  const r = await emuControl(controlSocket(env, prefix, link), "get");
  return r
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [port, latency, loss, forwarded, dropped] = l.split(" ").map(Number);
      return {
        port: port ?? 0,
        latency: latency ?? 0,
        loss: loss ?? 0,
        forwarded: forwarded ?? 0,
        dropped: dropped ?? 0,
      };
    });
}

/** Stop emulating these links: the forwarders stop (the halves stay, unjoined) and qdiscs go. */
export async function emulationStop(env: Env, prefix: string, links: LinkPlan[]): Promise<void> {
  const { existsSync, readFileSync, rmSync } = await import("node:fs");
  const { processesIn, killAll } = await import("./processes.ts");
  const n = namesOf(prefix);
  const inEmu = new Set(processesIn([n.emulator]).map((p) => p.pid));
  const pids: number[] = [];
  for (const l of links) {
    const f = join(emuDir(env, prefix), `${linkKey(l.name)}.pid`);
    if (existsSync(f)) {
      const pid = Number(readFileSync(f, "utf8").trim());
      if (inEmu.has(pid)) pids.push(pid);
      rmSync(f, { force: true });
    }
    rmSync(controlSocket(env, prefix, l.name), { force: true });
  }
  await killAll(pids);
  await env.tcIn(n.emulator).submit(
    links.flatMap((l) => l.endpoints.map((_, k) => `qdisc del dev ${linkPort(l.name, k)} root`)),
    { absentOk: true },
  );
}
