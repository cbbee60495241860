#!/usr/bin/env bash
# Sets up a fresh machine (Debian, Node 20, npm; root for the Linux data plane):
# Debian packages the facility's linux backend and the tests use, then npm packages.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(iproute2 nftables dnsmasq-base busybox-static etcd-server etcd-client iperf3 debootstrap chromium procps util-linux psmisc python3 openssl gcc libc6-dev)
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
