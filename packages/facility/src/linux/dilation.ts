/**
 * Time dilation of a VM (`clock.dilation == D`: the guest's clock runs D
 * times slower than the host's). The mechanism is QEMU's instruction counting
 * under TCG: with `-icount shift=N` every guest instruction advances the
 * guest's clocks by 2^N ns, so guest time is instructions × 2^N ns, whatever
 * the host does. The guest idles by polling (`idle=poll`), never by halting,
 * so its clock never runs on real time while it waits. How fast instructions
 * go is then the host CPU the QEMU process gets: at `rate` guest seconds per
 * host CPU second (measured) and a CPU quota of `cap` cores, the guest clock
 * runs at rate × cap of the host's, and the cap for D is 1 / (D × rate).
 *
 * The rate is measured on the running guest (its `/proc/uptime` through the
 * agent against the QEMU process's CPU time from `/proc/<pid>/stat`) and
 * kept per data directory (`vm-icount.json`, the rate at shift 0) to choose
 * the next VM's shift. What the profile reports as achieved is guest time
 * against wall time; `ofCpu` is against the host CPU the guest was given
 * (divided by its cap): the two differ when the host could not give the
 * whole cap (a loaded host), which `obtained` shows.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Guest seconds per host CPU second at shift 0 (TCG with icount, idle=poll) on this project's 2-core host. */
export const DEFAULT_RATE = 0.03;
export const SHIFT_MAX = 10;
/** A cgroup quota below 1 ms per 100 ms period is not kept by the kernel. */
export const CAP_MIN = 0.01;
/** Instruction counting runs every vCPU in one TCG thread: one host core at most. */
export const CAP_MAX = 1;
/** The cap a shift is chosen for: 4× headroom either way for the rate's error and a loaded host. */
const CAP_TARGET = 0.25;

export interface DilationProfile {
  /** What the model asked (`clock.dilation`). */
  asked: number;
  /** Host wall seconds per guest second, measured over `windowS` once calibrated. */
  achieved: number;
  /** Host seconds per guest second had the host given the whole cap: (CPU time / cap) per guest second. */
  ofCpu: number;
  /** QEMU's `-icount shift`: each instruction is 2^shift ns of guest time. */
  shift: number;
  /** The CPU quota it runs under, in host cores. */
  cap: number;
  /** Guest seconds per host CPU second at this shift, as measured. */
  rate: number;
  /** The share of its cap the QEMU process got while measured (below 1: the host was short of CPU). */
  obtained: number;
  windowS: number;
  /** Relative error of `achieved` from the agent's round trip (the guest reads its clock somewhere inside it). */
  error: number;
}

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

/**
 * Calibrate a booted dilated VM: measure its rate, set the cap for `asked`,
 * measure what that gives, correct the cap once from the rate measured under
 * it when the result is more than 5% off, and report. `read` takes a reading;
 * `setCap` applies a CPU quota. Throws (naming the achievable range) when the
 * measured rate puts the cap outside CAP_MIN..CAP_MAX at this shift.
 */
export async function calibrate(o: {
  asked: number;
  shift: number;
  dataDir: string;
  read: () => Promise<Reading>;
  setCap: (cores: number) => void;
  windowMs: number;
}): Promise<DilationProfile> {
  const measure = async (): Promise<Span> => {
    const a = await o.read();
    await new Promise((r) => setTimeout(r, o.windowMs));
    return span(a, await o.read());
  };
  const rateOf = (s: Span) => s.guest / Math.max(s.cpu, 0.01);
  const first = await measure();
  let rate = rateOf(first);
  rememberRate(o.dataDir, rate / 2 ** o.shift);
  const refuse = (r: number) =>
    new Error(
      dilationRefusal(o.asked, r / 2 ** o.shift) ??
        `clock.dilation == ${o.asked}: at icount shift ${o.shift} this VM runs ${r.toPrecision(3)} guest seconds per host CPU second, which needs a CPU quota outside ${CAP_MIN}..${CAP_MAX} core; a new boot chooses the shift from this rate`,
    );
  let cap = dilationCap(o.asked, rate);
  if (cap === undefined) throw refuse(rate);
  o.setCap(cap);
  let s = await measure();
  if (Math.abs(s.wall / s.guest / o.asked - 1) > 0.05) {
    rate = rateOf(s);
    const next = dilationCap(o.asked, rate);
    if (next === undefined) throw refuse(rate);
    cap = next;
    o.setCap(cap);
    s = await measure();
  }
  return {
    asked: o.asked,
    achieved: s.wall / s.guest,
    ofCpu: s.cpu / cap / s.guest,
    shift: o.shift,
    cap,
    rate: rateOf(s),
    obtained: s.cpu / s.wall / cap,
    windowS: s.wall,
    error: s.error,
  };
}
