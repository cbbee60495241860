/**
 * Jupyter in an XDC: an image layer with Debian's notebook (built once, cached
 * beside the Debian image) and the command the container runs before sshd.
 *
 * The layer is the upper directory of an overlay on the Debian image in which
 * `apt-get install jupyter-notebook` ran in a chroot: only what apt added or
 * changed, used as the overlay layer above the image (whiteouts included).
 * Built in a private mount namespace, so nothing stays mounted on failure, and
 * into a temporary directory renamed at the end, so a half-built layer is
 * never used.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { imageCache } from "@merge/facility/linux";
import { run } from "./run.ts";
import { JUPYTER_PORT, type XdcSpec } from "./wire.ts";

/** Debian's packages in the layer. */
export const JUPYTER_PACKAGES = ["jupyter-notebook"];

export const jupyterLayer = (cache = imageCache()) => join(cache, "bookworm-jupyter");

const BUILD = `set -e
export T="$OUT.building"
rm -rf "$T"; mkdir -p "$T/upper" "$T/work" "$T/root"
unshare --mount --propagation private /bin/sh -ec '
  R="$T/root"
  mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$T/upper,workdir=$T/work" "$R"
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs tmpfs "$R/tmp"
  [ -e "$R/etc/resolv.conf" ] || touch "$R/etc/resolv.conf"
  mount --bind /etc/resolv.conf "$R/etc/resolv.conf"
  export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
  chroot "$R" apt-get update -q
  chroot "$R" apt-get install -y -q --no-install-recommends $PACKAGES
  chroot "$R" apt-get clean
  rm -rf "$R"/var/lib/apt/lists/*
'
rm -rf "$OUT"; mv "$T/upper" "$OUT"; rm -rf "$T"
`;

let building: Promise<string> | undefined;

/**
 * The Jupyter layer, built if missing (about a minute: apt in a chroot). One build at a time per process;
 * a failure names apt's last lines.
 */
export function ensureJupyterLayer(cache = imageCache()): Promise<string> {
  const out = jupyterLayer(cache);
  if (existsSync(join(out, "usr/bin/jupyter-notebook"))) return Promise.resolve(out);
  building ??= (async () => {
    const base = join(cache, "bookworm");
    if (!existsSync(join(base, "usr/bin/python3")))
      throw new Error(`the Debian image is not built (${base}): run scripts/setup.sh as root`);
    const r = await run("/bin/sh", ["-c", BUILD], {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", OUT: out, BASE: base, PACKAGES: JUPYTER_PACKAGES.join(" ") },
    });
    if (r.code !== 0 || !existsSync(join(out, "usr/bin/jupyter-notebook")))
      throw new Error(
        `building the Jupyter layer (${out}) failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ")}`,
      );
    return out;
  })().finally(() => {
    building = undefined;
  });
  return building;
}

/**
 * Jupyter for the project, run as the XDC's first account with the notebooks in /proj/<project>. The token
 * comes in the environment (not the command line, which every local user can read in /proc); the
 * portal holds it and adds it to what it proxies, so nobody types it.
 */
export function jupyterCommand(s: XdcSpec, address: string): string | undefined {
  const owner = s.accounts[0];
  if (owner === undefined || !s.jupyter) return undefined;
  return [
    `exec runuser -u ${owner.name} -- env HOME=/home/${owner.name} JUPYTER_TOKEN="$XDC_JUPYTER_TOKEN"`,
    `jupyter-notebook --no-browser --ip=${address} --port=${JUPYTER_PORT} --notebook-dir=/proj/${s.project}`,
    `--NotebookApp.base_url=/xdc/${s.id}/jupyter/ --NotebookApp.password=`,
    // The portal's proxy sets Origin/Host to its own; the token is what guards the port.
    "--NotebookApp.allow_origin=* --NotebookApp.allow_remote_access=True",
  ].join(" ");
}
