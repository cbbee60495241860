"""
Mininet on the shape of the materialize-linux benchmark, for a side-by-side
figure: N hosts in LANs of 10 (a Linux bridge per LAN), the first hosts of
consecutive LANs joined by point-to-point links, static addresses; Linux
bridges, no controller, no shaping (Mininet's fastest configuration).

Driven over stdin/stdout by materialize-linux.bench.ts:
  argv: N PREFIX          (PREFIX: 2 letters + digits naming this run's hosts and bridges)
  prints "ready" once Mininet is imported and the topology is described,
  "build" on stdin   -> builds and starts the network, prints "built <ms>"
  "stop" on stdin    -> stops it (everything removed), prints "stopped <ms>"
"""

import sys
import time

from mininet.link import Link
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge


def main():
    n, prefix = int(sys.argv[1]), sys.argv[2]
    setLogLevel("error")
    # No controller, no auto static ARP: what a Linux-bridge network needs and nothing more.
    net = Mininet(switch=LinuxBridge, controller=None, link=Link, build=False, autoSetMacs=False)
    groups = (n + 9) // 10
    hosts = []
    for g in range(groups):
        sw = net.addSwitch(f"{prefix}s{g}", dpid=f"{g + 1:016x}")
        for k in range(min(10, n - g * 10)):
            i = g * 10 + k
            h = net.addHost(f"{prefix}h{i}", ip=f"10.{100 + (g >> 8)}.{g & 255}.{k + 1}/24")
            net.addLink(h, sw)
            hosts.append(h)
    for g in range(groups - 1):
        a, b = hosts[g * 10], hosts[(g + 1) * 10]
        net.addLink(
            a,
            b,
            params1={"ip": f"10.200.{g >> 6}.{(g & 63) * 4 + 1}/30"},
            params2={"ip": f"10.200.{g >> 6}.{(g & 63) * 4 + 2}/30"},
        )
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "build":
            t0 = time.monotonic()
            net.build()
            net.start()
            print(f"built {round((time.monotonic() - t0) * 1000)}", flush=True)
        elif cmd == "stop":
            t0 = time.monotonic()
            net.stop()
            print(f"stopped {round((time.monotonic() - t0) * 1000)}", flush=True)
            return


if __name__ == "__main__":
    main()
