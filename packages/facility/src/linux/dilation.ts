/**
 * Time dilation of a VM (`clock.dilation == D`: the guest's clock runs D
 * times slower than the host's). The mechanism is QEMU's instruction counting
 * under TCG: with `-icount shift=N` every guest instruction advances the
 * guest's clocks by 2^N ns, so guest time is instructions × 2^N ns, whatever
 * the host does. The guest idles by polling (`idle=poll`), never by halting,
 * so its clock never runs on real time while it waits. How fast instructions
 * go is then the host CPU the QEMU process gets: at `rate` guest seconds per
 * host CPU second and a CPU quota of `cap` cores, the guest clock runs at
 * rate × cap of the host's, and the cap for D is 1 / (D × rate). The rate is
 * not a constant: it depends on the guest's instruction mix (under TCG a
 * polling idle loop runs about ten times fewer instructions per CPU second
 * than a shell loop), so a governor keeps the guest's clock on its target:
 * every 500 ms it reads the guest's clock (QEMU's instruction count,
 * `query-replay`, × 2^shift ns) and the QEMU process's CPU time, updates the
 * rate, and sets the cap that closes the gap within 2 s.
 *
 * The shift-0 rate it settles on is kept per data directory
 * (`vm-icount.json`) to choose the next VM's shift. What the profile reports
 * as achieved is guest time against wall time over a window once settled;
 * `ofCpu` is against the host CPU the guest was given (divided by its mean
 * cap), `obtained` the share of the cap the host gave (below 1 on a loaded
 * host, where the governor raises the cap to make up).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DilationReport } from "@merge/materialize";

/** Guest seconds per host CPU second at shift 0 (TCG with icount, idle=poll) on this project's 2-core host. */
export const DEFAULT_RATE = 0.03;
export const SHIFT_MAX = 10;
/** A cgroup quota below 1 ms per 100 ms period is not kept by the kernel. */
export const CAP_MIN = 0.01;
/** Instruction counting runs every vCPU in one TCG thread: one host core at most. */
export const CAP_MAX = 1;
/** The cap a shift is chosen for: 4× headroom either way for the rate's error and a loaded host. */
const CAP_TARGET = 0.25;

/** The dilation a VM got, as its node status reports it (the plan's wire shape). */
export type DilationProfile = DilationReport;

/** The dilations this host can give at a shift-0 rate: shift 0..SHIFT_MAX, cap CAP_MIN..CAP_MAX. */
export function dilationRange(rate0: number): { min: number; max: number } {
  return { min: 1 / (rate0 * 2 ** SHIFT_MAX * CAP_MAX), max: 1 / (rate0 * CAP_MIN) };
}

/** Why `asked` cannot be given here (undefined when it can), naming the achievable range. */
export function dilationRefusal(asked: number, rate0: number): string | undefined {
  const { min, max } = dilationRange(rate0);
  if (asked >= min && asked <= max) return undefined;
  return `clock.dilation == ${asked} cannot be met here: QEMU runs ${rate0.toPrecision(3)} guest seconds per host CPU second at icount shift 0, so dilations from ${round(min)} to ${round(max)} are achievable (shift 0..${SHIFT_MAX}, CPU quota ${CAP_MIN}..${CAP_MAX} core)`;
}

/** The shift that puts the cap for `asked` nearest CAP_TARGET. */
export function dilationShift(asked: number, rate0: number): number {
  const n = Math.round(Math.log2(1 / (asked * rate0 * CAP_TARGET)));
  return Math.min(SHIFT_MAX, Math.max(0, n));
}

/** The cap giving `asked` at `rate` guest seconds per host CPU second, or undefined when outside CAP_MIN..CAP_MAX. */
export function dilationCap(asked: number, rate: number): number | undefined {
  const cap = 1 / (asked * rate);
  return cap >= CAP_MIN && cap <= CAP_MAX ? cap : undefined;
}

const RATE_FILE = "vm-icount.json";

/** The shift-0 rate last measured under this data directory, else DEFAULT_RATE. */
export function knownRate(dataDir: string): number {
  try {
    const r = (JSON.parse(readFileSync(join(dataDir, RATE_FILE), "utf8")) as { rate0?: unknown }).rate0;
    return typeof r === "number" && r > 0 && Number.isFinite(r) ? r : DEFAULT_RATE;
  } catch {
    return DEFAULT_RATE;
  }
}

export function rememberRate(dataDir: string, rate0: number): void {
  writeFileSync(join(dataDir, RATE_FILE), `${JSON.stringify({ rate0, measured: new Date().toISOString() })}\n`);
}

/** One reading: the guest's uptime (s) read inside a request that took `rt` ms, the host's wall and QEMU CPU time. */
export interface Reading {
  guest: number;
  wall: number;
  cpu: number;
  rt: number;
}

/** A span between two readings: guest, wall and CPU seconds. */
export interface Span {
  guest: number;
  wall: number;
  cpu: number;
  /** The round trips' share of the wall span: the bound on the error of guest vs wall. */
  error: number;
}

export function span(a: Reading, b: Reading): Span {
  const wall = b.wall - a.wall;
  return { guest: b.guest - a.guest, wall, cpu: b.cpu - a.cpu, error: (a.rt + b.rt) / 2000 / wall };
}

/** CPU seconds the process has used (user + system), from /proc/<pid>/stat (100 ticks a second). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const round = (x: number): string => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(2));

/** The governor's state: its anchor (host and guest seconds when it began), the last reading, its estimate of the rate. */
export interface Governor {
  t0: number;
  g0: number;
  last: Reading;
  /** Guest seconds per host CPU second, smoothed: it changes with what the guest runs. */
  rate: number;
  cap: number;
}

/** Host seconds of backlog the governor catches up at most (beyond: it re-anchors rather than race the guest). */
const BACKLOG_S = 5;
/** Host seconds over which the governor closes the gap between the guest's clock and its target. */
const HORIZON_S = 2;

export function governorStart(r: Reading, rate: number, cap: number): Governor {
  return { t0: r.wall, g0: r.guest, last: r, rate, cap };
}

/**
 * One step of the dilation governor: the guest's clock should read g0 + (t − t0) / D.
 * From the last step's guest and CPU seconds it updates the rate (instructions per
 * CPU second change with the guest's instruction mix: a polling idle loop runs
 * about ten times fewer than a shell loop under TCG), asks for the rate that closes
 * the gap within HORIZON_S, and returns the cap that gives it, CAP_MIN..CAP_MAX.
 */
export function governStep(s: Governor, r: Reading, asked: number): Governor {
  const dg = r.guest - s.last.guest;
  const dc = r.cpu - s.last.cpu;
  const rate = dc > 0.005 && dg > 0 ? 0.5 * s.rate + 0.5 * (dg / dc) : s.rate;
  let { t0, g0 } = s;
  const behind = g0 + (r.wall - t0) / asked - r.guest;
  // Starved for long (a loaded host): catch up at most BACKLOG_S of host time, not all of it at once.
  if (behind > BACKLOG_S / asked) g0 -= behind - BACKLOG_S / asked;
  if (behind < -BACKLOG_S / asked) g0 -= behind + BACKLOG_S / asked;
  const want = Math.max(0, 1 / asked + (g0 + (r.wall - t0) / asked - r.guest) / HORIZON_S);
  const cap = Math.min(CAP_MAX, Math.max(CAP_MIN, want / rate));
  return { t0, g0, last: r, rate, cap };
}

export interface GovernOptions {
  asked: number;
  shift: number;
  dataDir: string;
  read: () => Promise<Reading>;
  setCap: (cores: number) => void;
  every: (fn: () => Promise<void>, ms: number) => void;
  stepMs: number;
}

/**
 * Start governing a dilated VM (`every` schedules the steps for as long as
 * it runs; its caller stops them), from the cap it has now. Returns the caps
 * it sets (for the mean over a window) and its state as it goes.
 */
export async function governRun(o: GovernOptions, cap = 0.25): Promise<{ caps: number[]; state: () => Governor }> {
  let s = governorStart(await o.read(), knownRate(o.dataDir) * 2 ** o.shift, cap);
  o.setCap(s.cap);
  const caps: number[] = [];
  let busy = false;
  o.every(async () => {
    if (busy) return;
    busy = true;
    try {
      s = governStep(s, await o.read(), o.asked);
      o.setCap(s.cap);
      caps.push(s.cap);
    } finally {
      busy = false;
    }
  }, o.stepMs);
  return { caps, state: () => s };
}

/**
 * Govern a booted dilated VM for as long as it runs (`governRun`) and report
 * what it achieved over `windowMs` after `settleMs`. `read` takes a reading
 * (the guest's clock from QEMU's instruction count, cheap: QMP); `setCap`
 * applies a CPU quota. The rate it settled on is remembered for the next VM's
 * shift.
 */
export async function govern(o: GovernOptions & { settleMs: number; windowMs: number }): Promise<DilationProfile> {
  const g = await governRun(o);
  await new Promise((r) => setTimeout(r, o.settleMs));
  rememberRate(o.dataDir, g.state().rate / 2 ** o.shift);
  const a = await o.read();
  g.caps.length = 0;
  await new Promise((r) => setTimeout(r, o.windowMs));
  const w = span(a, await o.read());
  const cap = g.caps.length ? g.caps.reduce((x, y) => x + y, 0) / g.caps.length : g.state().cap;
  return {
    asked: o.asked,
    achieved: w.wall / w.guest,
    ofCpu: w.cpu / cap / w.guest,
    shift: o.shift,
    cap,
    rate: w.guest / Math.max(w.cpu, 0.01),
    obtained: w.cpu / w.wall / cap,
    windowS: w.wall,
    error: w.error,
  };
}
