/**
 * The image catalog: OS images the compiler knows by their canonical names
 * (what facilities are given), and the other names people write for them
 * (`ubuntu:1804`, `debian:12`, `ubuntu-22.04`). A facility may offer images
 * this catalog does not list, so an unknown image is a warning, not an error.
 */
export const KNOWN_IMAGES: readonly string[] = [
  "bullseye",
  "bookworm",
  "trixie",
  "1804",
  "2004",
  "2204",
  "2404",
  "busybox",
  "alpine",
  "rocky9",
  "fedora40",
  "freebsd14",
];

/** Other names → canonical name. Matched case-insensitively. */
const ALIASES: Readonly<Record<string, string>> = {
  ...debian("bullseye", 11),
  ...debian("bookworm", 12),
  ...debian("trixie", 13),
  ...ubuntu("1804", "bionic"),
  ...ubuntu("2004", "focal"),
  ...ubuntu("2204", "jammy"),
  ...ubuntu("2404", "noble"),
  "busybox:latest": "busybox",
  "alpine:latest": "alpine",
  alpine3: "alpine",
  rocky: "rocky9",
  "rocky:9": "rocky9",
  rockylinux9: "rocky9",
  "rockylinux:9": "rocky9",
  fedora: "fedora40",
  "fedora:40": "fedora40",
  freebsd: "freebsd14",
  "freebsd:14": "freebsd14",
};

function debian(suite: string, version: number): Record<string, string> {
  const names = [`debian${version}`, `debian-${version}`, `debian:${version}`, `debian:${suite}`, `debian-${suite}`];
  return Object.fromEntries(names.map((n) => [n, suite]));
}

function ubuntu(release: string, codename: string): Record<string, string> {
  const dotted = `${release.slice(0, 2)}.${release.slice(2)}`;
  const names = [
    `ubuntu${release}`,
    `ubuntu-${release}`,
    `ubuntu:${release}`,
    `ubuntu${dotted}`,
    `ubuntu-${dotted}`,
    `ubuntu:${dotted}`,
    dotted,
    codename,
    `ubuntu:${codename}`,
  ];
  return Object.fromEntries(names.map((n) => [n, release]));
}

/** The catalog's name for an image name or alias; undefined when the catalog does not know it. */
export function canonicalImage(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  if (KNOWN_IMAGES.includes(lower)) return lower;
  return ALIASES[lower];
}

/** Every name the catalog accepts, canonical names first (for "did you mean"). */
export function imageNames(): string[] {
  return [...KNOWN_IMAGES, ...Object.keys(ALIASES)];
}
