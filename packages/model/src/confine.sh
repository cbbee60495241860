#!/bin/sh
# Builds a model's sandbox root and runs a command in it. Started by
# confinement.ts inside fresh mount, network and pid namespaces (as root, or
# in a user namespace of its own when the portal is not root):
#   unshare ... -- /bin/sh confine.sh ROOT WORK UID -- READONLY... -- command ...
# The new root is a small tmpfs holding only: each READONLY path (a directory
# or a file, bound read-only at the same absolute path, so symlinks between
# them still resolve), the scratch directory WORK at /merge-scratch (read-write; a name no host path it binds is likely to share),
# and /dev/{null,zero,urandom}; no /proc, no /tmp (TMPDIR is the scratch).
# Nothing else of the host (its data directories, /root, /etc, keys) exists in
# it. The command runs as UID (with the same gid, no groups), with no
# capabilities and no_new_privs. UID "-" keeps the current uid (the mapped
# root of a user namespace, which holds no rights outside it).
# --pdeathsig again, because the uid change clears the one unshare
# --kill-child set: the run dies with the unshare process that waits for it.
# The mounts live and die with the mount namespace; ROOT is an empty
# directory the caller made and removes.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
root=$1
work=$2
uid=$3
shift 3
[ "$1" = "--" ] && shift

mount -t tmpfs -o size=256k,mode=755,nosuid,nodev merge-sandbox "$root"
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  src=$1
  shift
  dst=$root$src
  if [ -L "$src" ]; then
    mkdir -p "$(dirname "$dst")"
    ln -s "$(readlink "$src")" "$dst"
    continue
  fi
  if [ -d "$src" ]; then
    mkdir -p "$dst"
  else
    mkdir -p "$(dirname "$dst")"
    touch "$dst"
  fi
  mount --rbind "$src" "$dst"
  mount -o remount,bind,ro,nosuid,nodev "$dst"
done
[ "$#" -gt 0 ] && shift
mkdir -p "$root/merge-scratch" "$root/dev"
mount --bind "$work" "$root/merge-scratch"
for f in null zero urandom; do
  touch "$root/dev/$f"
  mount --bind "/dev/$f" "$root/dev/$f"
done
mount -o remount,bind,ro,nosuid,nodev "$root"

if [ "$uid" = "-" ]; then
  exec chroot "$root" setpriv --pdeathsig KILL --no-new-privs --inh-caps=-all --bounding-set=-all -- env -C /merge-scratch "$@"
fi
exec chroot "$root" setpriv --pdeathsig KILL --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --inh-caps=-all \
  --bounding-set=-all -- env -C /merge-scratch "$@"
