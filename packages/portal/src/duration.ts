/** Durations as people write them (`90m`, `48h`, `7d`, `2w`): the policy file, the CLI, notices. */

const DAY = 86_400;
export const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: DAY, w: 7 * DAY };

/** `48h` → 172800. Undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text.trim());
  if (!m) return /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
  return Math.round(Number(m[1]) * (DURATION_UNITS[m[2] as string] as number));
}

/** 172800 → `2d`, 5400 → `1h30m`: the largest units, at most two. */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return "0s";
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [u, n] of [
    ["d", DAY],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (rest >= n && parts.length < 2) {
      parts.push(`${Math.floor(rest / n)}${u}`);
      rest %= n;
    } else if (parts.length > 0) break;
  }
  return parts.join("");
}
