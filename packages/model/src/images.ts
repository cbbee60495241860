/**
 * OS images the compiler knows. A facility may offer others, so an unknown
 * image is a warning, not an error.
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
