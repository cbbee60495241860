#!/bin/sh
# Runs a command in a file system of its own, as user nobody. Started by
# packages/model/src/python.ts inside fresh mount and network namespaces:
#   unshare --net --mount --propagation private -- /bin/sh confine.sh ROOT WORK PACKAGE -- command ...
# The new root holds only /usr, /lib*, /bin (read-only), the mergexp package
# at /mergexp (read-only), the working directory at /work and /dev/{null,zero,urandom}.
# The mounts live and die with the mount namespace; ROOT is an empty directory
# the caller made and removes.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
root=$1
work=$2
package=$3
shift 3
[ "$1" = "--" ] && shift

mount -t tmpfs -o size=64k,mode=755 mergexp-root "$root"
for d in usr lib lib32 lib64 libx32 bin sbin; do
  if [ -L "/$d" ]; then
    ln -s "$(readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then
    mkdir "$root/$d"
    mount --rbind "/$d" "$root/$d"
    mount -o remount,bind,ro "$root/$d"
  fi
done
mkdir "$root/mergexp" "$root/work" "$root/dev"
mount --bind "$package" "$root/mergexp"
mount -o remount,bind,ro "$root/mergexp"
mount --bind "$work" "$root/work"
for f in null zero urandom; do
  touch "$root/dev/$f"
  mount --bind "/dev/$f" "$root/dev/$f"
done
mount -o remount,ro "$root"

exec chroot "$root" setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --inh-caps=-all \
  --bounding-set=-all -- env -C /work "$@"
