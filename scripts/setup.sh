#!/usr/bin/env bash
# Sets up a fresh machine (Debian, Node 20, npm; root for the Linux data plane):
# Debian packages the facility's linux backend and the tests use, then npm packages.
# Safe to run again: it installs only what is missing.
#   scripts/setup.sh                  set up; say how to put mrg, mergectl and cog on the PATH
#   scripts/setup.sh --link [DIR]     also symlink them into DIR (default /usr/local/bin)
set -euo pipefail
cd "$(dirname "$0")/.."

link_dir=""
case "${1:-}" in
  "") ;;
  --link) link_dir="${2:-/usr/local/bin}" ;;
  *) echo "usage: scripts/setup.sh [--link [DIR]]   (DIR: where to symlink mrg, mergectl, cog; default /usr/local/bin)" >&2; exit 2 ;;
esac

# wireguard-go + wireguard-tools: XDC attach and facilities joined across the wide area (no kernel module here).
# mininet + bridge-utils: only for the side-by-side figure in `npm run bench -- materialize-linux` (about 2 MB).
debs=(iproute2 nftables dnsmasq-base busybox-static etcd-server etcd-client iperf3 debootstrap chromium procps util-linux psmisc python3 openssl gcc libc6-dev qemu-system-x86 qemu-utils linux-image-amd64 cpio openssh-server openssh-client wireguard-go wireguard-tools sshfs bindfs iputils-ping mininet bridge-utils)
missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing Debian packages (${missing[*]}); run as root to install them." >&2
    echo "setup: without them the sim backend is used and the linux-backend tests are skipped." >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  # npm install, not npm ci: npm 11 leaves other platforms' optional packages out of the
  # lock file, which npm ci then refuses as "out of sync".
  npm install --no-audit --no-fund
fi

echo "setup: building the command lines (mrg, mergectl, cog)"
npm run --silent build

# The default node image, Debian bookworm, built once from Debian's packages into the
# image cache (/var/cache/merge/images; minutes the first time, then cached).
if [ "$(id -u)" -eq 0 ] && command -v debootstrap >/dev/null && [ ! -e "${MERGE_IMAGE_CACHE:-/var/cache/merge/images}/bookworm/etc/mrg/boot" ]; then
  echo "setup: building the default node image, Debian bookworm (debootstrap; a few minutes, once)"
  if ! packages/cli/bin/cog images build bookworm; then
    echo "setup: the Debian image could not be built; nodes boot the busybox image until 'cog images build bookworm' succeeds" >&2
  fi
fi

# Jupyter for XDCs: Debian's jupyter-notebook installed with apt inside the image (a layer
# over it, /var/cache/merge/images/bookworm-jupyter); nothing on the host. The XDC host
# builds it on first use too; here it is built once ahead, so no XDC waits for it.
if [ "$(id -u)" -eq 0 ] && [ -e "${MERGE_IMAGE_CACHE:-/var/cache/merge/images}/bookworm/usr/bin/python3" ] && [ ! -e "${MERGE_IMAGE_CACHE:-/var/cache/merge/images}/bookworm-jupyter/usr/bin/jupyter-notebook" ]; then
  echo "setup: building the XDC Jupyter layer (apt in a chroot over the Debian image; a minute or more, once)"
  if ! npx tsx -e 'import("@merge/xdc").then((m) => m.ensureJupyterLayer())'; then
    echo "setup: the Jupyter layer could not be built; XDCs with --jupyter will try again when created" >&2
  fi
fi

# The command lines run from any directory, also through a symlink on the PATH.
bin="$(pwd)/packages/cli/bin"
if [ -n "$link_dir" ]; then
  mkdir -p "$link_dir"
  for c in mrg mergectl cog; do ln -sfn "$bin/$c" "$link_dir/$c"; done
  echo "setup: linked mrg, mergectl and cog into $link_dir"
elif [ "$(readlink -f "$(command -v mrg || echo /none)")" != "$bin/mrg" ]; then
  echo "setup: to run mrg, mergectl and cog from anywhere: scripts/setup.sh --link   (symlinks in /usr/local/bin)"
  echo "setup:   or: export PATH=\"$bin:\$PATH\""
fi
