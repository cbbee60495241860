/**
 * IPv4 addresses as unsigned 32-bit numbers, and CIDR arithmetic. Parsing is
 * strict: four decimal octets 0..255 without leading zeros, a prefix 0..32.
 */
export interface Cidr {
  /** The address as written (host part kept). */
  addr: number;
  prefix: number;
}

export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

/** `10.0.0.1/24`; undefined when malformed (the reason from `cidrProblem`). */
export function parseCidr(text: string): Cidr | undefined {
  return cidrProblem(text) === undefined ? cidrUnchecked(text) : undefined;
}

function cidrUnchecked(text: string): Cidr {
  const [a, p] = text.split("/") as [string, string];
  return { addr: parseIPv4(a) as number, prefix: Number(p) };
}

/** Why a CIDR host address is malformed, or undefined when it is well formed. */
export function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return `${JSON.stringify(text)} has no prefix length (write e.g. ${text}/24)`;
  const a = text.slice(0, slash);
  const p = text.slice(slash + 1);
  const addr = parseIPv4(a);
  if (addr === undefined) return `${JSON.stringify(a)} is not an IPv4 address (four numbers 0-255, e.g. 10.0.0.1)`;
  if (!/^(0|[1-9]\d?)$/.test(p) || Number(p) > 32) return `prefix length "${p}" must be a number from 0 to 32`;
  const prefix = Number(p);
  if (prefix <= 30) {
    const host = addr - network(addr, prefix);
    if (host === 0) return `${text} is the network address of its subnet, not a host address`;
    if (host === size(prefix) - 1) return `${text} is the broadcast address of its subnet, not a host address`;
  }
  if (addr === 0) return `${text}: 0.0.0.0 is not a host address`;
  const first = Math.floor(addr / 2 ** 24);
  if (first === 127) return `${text} is a loopback address`;
  if (first >= 224) return `${text} is a multicast or reserved address`;
  return undefined;
}

export function size(prefix: number): number {
  return 2 ** (32 - prefix);
}

export function network(addr: number, prefix: number): number {
  const s = size(prefix);
  return Math.floor(addr / s) * s;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function formatCidr(addr: number, prefix: number): string {
  return `${formatIPv4(addr)}/${prefix}`;
}

/** The smallest prefix whose subnet holds `hosts` host addresses (at least a /30). */
export function prefixFor(hosts: number): number {
  let prefix = 30;
  while (prefix > 0 && size(prefix) - 2 < hosts) prefix--;
  return prefix;
}

/** The fewest CIDR blocks covering exactly [first, last]. */
export function cover(first: number, last: number): { addr: number; prefix: number }[] {
  const out: { addr: number; prefix: number }[] = [];
  let at = first;
  while (at <= last) {
    let prefix = 32;
    while (prefix > 0) {
      const s = size(prefix - 1);
      if (at % s !== 0 || at + s - 1 > last) break;
      prefix--;
    }
    out.push({ addr: at, prefix });
    at += size(prefix);
  }
  return out;
}

/** A route destination prefix, e.g. `10.0.0.0/22` (network addresses allowed). */
export function parsePrefix(text: string): Cidr | undefined {
  const [a, p, extra] = text.split("/");
  const addr = a === undefined ? undefined : parseIPv4(a);
  if (addr === undefined || p === undefined || extra !== undefined || !/^(0|[1-9]\d?)$/.test(p) || Number(p) > 32) {
    return undefined;
  }
  return { addr, prefix: Number(p) };
}
