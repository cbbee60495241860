/**
 * `/home/<user>` and `/proj/<project>` on VM nodes: the same directories of the
 * portal's storage a container node bind-mounts (storage.ts), given to the
 * guest over virtio-9p. QEMU exports one directory, a small tmpfs holding
 * binds of exactly the members' homes and the project directory, made in
 * QEMU's own mount namespace (the one `ip netns exec` gives it), so the host
 * gets no mount to clean up and nobody else's home is in the guest's reach; it
 * goes when QEMU does. The guest's init mounts the share and binds each
 * directory to its place before the merge boot runs (vm-image.ts).
 *
 * `security_model=passthrough`: QEMU (root) creates files with the guest
 * writer's uid and gid, so what a user writes in the guest is theirs on the
 * host, in XDCs and on container nodes (ids are the portal's everywhere).
 * `mapped-xattr`/`mapped-file` would leave every file root's on the host, the
 * owner only in an xattr the other sides do not read. The guest kernel checks
 * modes against those owners (9p2000.L, `access=user`). `multidevs=remap`:
 * the binds are file systems of their own (a project volume among them), so
 * inode numbers are remapped to stay unique in the guest.
 */
import type { StorageBind } from "./storage.ts";

/** The share's 9p mount tag (the guest's init looks for it). */
export const VM_STORAGE_TAG = "mrgstorage";

/** The script that makes the share in QEMU's mount namespace, then becomes QEMU (`$1` the share, then SRC DST pairs, `--`, QEMU's arguments). */
const SHARE = `set -e
share=$1; shift
mount -t tmpfs -o size=64k,mode=755 mrg-vm-storage "$share"
while [ "$1" != -- ]; do mkdir -p "$share$2"; mount --rbind "$1" "$share$2"; shift 2; done
shift
mount -o remount,ro "$share"
exec qemu-system-x86_64 "$@"
`;

/** QEMU's arguments for the share at `share` (an empty directory of the VM's). */
export function vmStorageArgs(share: string): string[] {
  return [
    "-fsdev",
    `local,id=mrgfs,path=${share},security_model=passthrough,multidevs=remap`,
    "-device",
    `virtio-9p-pci,fsdev=mrgfs,mount_tag=${VM_STORAGE_TAG}`,
  ];
}

/**
 * The command that starts QEMU with `args` (in the node's namespace, as argv
 * for `ip netns exec <ns>`): QEMU itself without storage, else the share made
 * first in the mount namespace QEMU then keeps.
 */
export function vmQemuCommand(share: string, binds: StorageBind[], args: string[]): string[] {
  if (binds.length === 0) return ["qemu-system-x86_64", ...args];
  const pairs = binds.flatMap((b) => {
    if (!b.target.startsWith("/") || b.target.split("/").includes(".."))
      throw new Error(`storage bind ${b.source} -> ${b.target}: the target must be an absolute path without '..'`);
    return [b.source, b.target];
  });
  return ["sh", "-c", SHARE, "mrg-vm-storage", share, ...pairs, "--", ...args, ...vmStorageArgs(share)];
}

/**
 * The guest's side (a part of its init): mount the share, bind each directory
 * in it to the same path in the guest, and let go of the share itself (the
 * binds keep it). Nothing when the VM has no share.
 */
export const GUEST_STORAGE = `# /home/<user>, /proj/<project> from the host (vm-storage.ts), when the VM has them.
if grep -qs ${VM_STORAGE_TAG} /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag; then
  mkdir -p /run/mrg-storage
  if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,access=user ${VM_STORAGE_TAG} /run/mrg-storage; then
    for d in /run/mrg-storage/home/* /run/mrg-storage/proj/*; do
      [ -d "$d" ] || continue
      t=\${d#/run/mrg-storage}; mkdir -p "$t"; mount -o bind "$d" "$t"
    done
    umount -l /run/mrg-storage
  fi
fi
`;
