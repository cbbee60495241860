/**
 * The guest image of a VM node: Debian's kernel (`linux-image-amd64`, the
 * newest `/boot/vmlinuz-*`) and an initramfs holding the busybox node image
 * (with the merge boot: infranet DHCP, foundry client), the NIC drivers a VM
 * may be given as modules (and virtio-9p's, for /home and /proj: vm-storage.ts), an init and the guest agent (`mrg-agent`, built
 * from native/ like the data plane's other programs). The root file system
 * lives in the guest's RAM, so every boot starts from the image (a reimage is
 * a fresh boot). Built on first use in milliseconds and cached in the image
 * cache (`/var/cache/merge/images/vm`), keyed by kernel and content.
 */
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { check, run } from "./command.ts";
import { busyboxImage, imageCache } from "./image.ts";
import { nativeProgram } from "./native.ts";
import { GUEST_STORAGE } from "./vm-storage.ts";

/** Kernel modules a guest loads, in dependency order (Debian builds these NIC drivers as modules). */
export const GUEST_MODULES = [
  "drivers/virtio/virtio_ring",
  "drivers/virtio/virtio",
  "drivers/virtio/virtio_pci_legacy_dev",
  "drivers/virtio/virtio_pci_modern_dev",
  "drivers/virtio/virtio_pci",
  "drivers/char/virtio_console",
  "net/core/failover",
  "drivers/net/net_failover",
  "drivers/net/virtio_net",
  "drivers/net/mii",
  "drivers/net/ethernet/intel/e1000/e1000",
  "drivers/net/ethernet/intel/e1000e/e1000e",
  "drivers/net/ethernet/realtek/8139cp",
  // virtio-9p for /home and /proj (vm-storage.ts)
  "fs/netfs/netfs",
  "fs/fscache/fscache",
  "net/9p/9pnet",
  "net/9p/9pnet_virtio",
  "fs/9p/9p",
];

const INIT = `#!/bin/busybox sh
# merge VM init: mount, load NIC drivers, name interfaces by MAC, hostname by DHCP, then the merge boot and the agent.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts; mount -t devpts devpts /dev/pts; mount -t tmpfs tmp /tmp; mount -t tmpfs run /run
for m in $(cat /etc/mrg/vm-modules); do insmod /lib/modules/$m.ko 2>/dev/null; done
# mrg.if=eth0/MAC,eth1/MAC: the host's names for the NICs (probe order follows drivers, not sockets).
for kv in $(cat /proc/cmdline); do case "$kv" in mrg.if=*) want="\${kv#mrg.if=}";; esac; done
i=0
for d in /sys/class/net/*; do n=\${d##*/}; [ "$n" = lo ] || { ip link set "$n" name "mrgtmp$i"; i=$((i+1)); }; done
for d in /sys/class/net/mrgtmp*; do
  [ -e "$d" ] || continue
  mac=$(cat "$d/address")
  for p in $(echo "$want" | tr , ' '); do [ "\${p#*/}" = "$mac" ] && ip link set "\${d##*/}" name "\${p%%/*}"; done
done
ip link set lo up
ip link set eth0 up
n=0
until udhcpc -i eth0 -q -n -t 4 -T 1 -O hostname -s /etc/mrg/vm-dhcp.sh; do n=$((n+1)); [ $n -ge 30 ] && break; done
${GUEST_STORAGE}/usr/lib/mrg/busybox sh /etc/mrg/boot > /var/log/mrg-boot.log 2>&1 &
while :; do /usr/lib/mrg/agent; sleep 1; done
`;

/** udhcpc's script for the first lease: the hostname the infranet's DHCP gives, then the usual handling. */
const VM_DHCP = `#!/bin/busybox sh
[ -n "$hostname" ] && { hostname "$hostname"; echo "$hostname" > /etc/hostname; }
exec /etc/mrg/udhcpc.sh "$@"
`;

export interface GuestImage {
  kernel: string;
  initrd: string;
  kernelVersion: string;
}

/** Debian's newest installed kernel for guests; a clear error naming the package when none is. */
export function guestKernel(): { kernel: string; version: string } {
  const found = existsSync("/boot")
    ? readdirSync("/boot")
        .filter((f) => /^vmlinuz-/.test(f))
        .sort()
    : [];
  const last = found[found.length - 1];
  if (!last)
    throw new Error(
      "no guest kernel: VM nodes boot Debian's kernel from /boot; install linux-image-amd64 (scripts/setup.sh does)",
    );
  const version = last.slice("vmlinuz-".length);
  if (!existsSync(`/usr/lib/modules/${version}`))
    throw new Error(`kernel ${version} has no modules in /usr/lib/modules/${version}; reinstall linux-image-amd64`);
  return { kernel: join("/boot", last), version };
}

/** The guest image, built once per kernel and content into the image cache. */
export async function guestImage(dataDir: string, cache = imageCache()): Promise<GuestImage> {
  const { kernel, version } = guestKernel();
  // The guest agent (native/mrg-agent.c, static): streamed sessions, ptys (vm-agent-wire.mjs is its host end).
  const agent = await nativeProgram(dataDir, "mrg-agent");
  const hash = createHash("sha256")
    .update([INIT, VM_DHCP, agent, GUEST_MODULES.join(","), readFileSync("/usr/bin/busybox").length].join("\0"))
    .digest("hex")
    .slice(0, 12);
  const dir = join(cache, "vm");
  const initrd = join(dir, `initrd-${version}-${hash}.cpio.gz`);
  if (existsSync(initrd)) return { kernel, initrd, kernelVersion: version };
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `build.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    const base = await busyboxImage(join(tmp, "data"));
    const root = join(tmp, "root");
    await check("cp", ["-a", `${base}/.`, root]);
    const mods = join(root, "lib/modules");
    mkdirSync(mods, { recursive: true });
    const names: string[] = [];
    for (const m of GUEST_MODULES) {
      const src = `/usr/lib/modules/${version}/kernel/${m}.ko`;
      if (!existsSync(src)) continue; // built in, or absent from this kernel
      const name = m.split("/").pop() as string;
      copyFileSync(src, join(mods, `${name}.ko`));
      names.push(name);
    }
    writeFileSync(join(root, "etc/mrg/vm-modules"), `${names.join("\n")}\n`);
    writeFileSync(join(root, "init"), INIT, { mode: 0o755 });
    writeFileSync(join(root, "etc/mrg/vm-dhcp.sh"), VM_DHCP, { mode: 0o755 });
    copyFileSync(agent, join(root, "usr/lib/mrg/agent"));
    const packed = `${initrd}.${process.pid}.tmp`;
    const r = await run("sh", ["-c", `cd '${root}' && find . | cpio -o -H newc --quiet | gzip -1 > '${packed}'`]);
    if (r.code !== 0) throw new Error(`packing the VM initramfs failed: ${r.stderr.trim()}`);
    renameSync(packed, initrd);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { kernel, initrd, kernelVersion: version };
}
