"""mergexp: the MX v1 experiment modeling API, compiled to XIR by Merge in TypeScript.

    from mergexp import *

    net = Network('hello', addressing == ipv4, routing == static)
    a, b = net.node('a', proc.cores >= 2), net.node('b', image == '2004')
    link = net.connect([a, b], capacity == mbps(100), latency == ms(10))
    link[a].socket.addrs = ip4('10.0.0.1/24')
    experiment(net)

Pure Python 3.11 standard library; see README.md beside this package.
"""

from .constraint import (
    NIC_MODELS,
    addressing,
    capacity,
    click,
    clock,
    cpu,
    disk,
    e1000,
    e1000e,
    emulation,
    experimentnetresolution,
    gpu,
    host,
    image,
    ipv4,
    kind,
    latency,
    layer,
    loss,
    lte_4g,
    memory,
    metal,
    netem,
    nic,
    platform,
    port,
    proc,
    routing,
    static,
    rtl8139,
    virt,
    virtio,
    wifi_ac,
)
from .errors import MergexpError
from .network import Endpoint, Link, Network, Node, Socket, experiment, http, https, ip4, tcp, udp
from .units import bps, eb, gb, gbps, kb, kbps, mb, mbps, ms, ns, pb, pbps, s, tb, tbps, us

__all__ = [
    "Network",
    "Node",
    "Link",
    "Socket",
    "Endpoint",
    "experiment",
    "ip4",
    "MergexpError",
    # node.ingress(http, 8080)
    "tcp",
    "udp",
    "http",
    "https",
    # node
    "proc",
    "memory",
    "disk",
    "gpu",
    "metal",
    "virt",
    "cpu",
    "clock",
    "image",
    "host",
    "platform",
    # socket
    "port",
    "nic",
    "virtio",
    "rtl8139",
    "e1000",
    "e1000e",
    "NIC_MODELS",
    # link
    "capacity",
    "latency",
    "loss",
    "kind",
    "layer",
    "lte_4g",
    "wifi_ac",
    # network
    "addressing",
    "routing",
    "emulation",
    "experimentnetresolution",
    "ipv4",
    "static",
    "netem",
    "click",
    # units
    "kb",
    "mb",
    "gb",
    "tb",
    "pb",
    "eb",
    "bps",
    "kbps",
    "mbps",
    "gbps",
    "tbps",
    "pbps",
    "ns",
    "us",
    "ms",
    "s",
]

# v0 names v1 cannot express (experiment storage) or that v0 reached another
# way, and what to write instead; shared with the runner for NameError hints.
V0_REPLACEMENTS = {
    "Storage": "nothing: experiment storage is not part of mergexp v1",
    # Names a v0 script imported from a v0 module (these hints are for NameError only).
    "cores": "proc.cores (or v0's 'from mergexp.machine import cores')",
    "Topology": "Network(name, *constraints) (or v0's mx.Topology)",
    "connect": "net.connect(nodes, *constraints)",
    "device": "net.node(name, *constraints)",
}


def Topology(name, *constraints):
    """v0: Network (see v0.py)."""
    from . import v0

    v0.used("mx.Topology")
    return Network(name, *constraints)


# v0 names that are v1 properties under another name, reached as mergexp.<name>.
_V0_ALIASES = {"cores": proc.cores, "arch": platform}


def __getattr__(name):
    if name in _V0_ALIASES:
        from . import v0

        v0.used("mergexp.%s" % name)
        return _V0_ALIASES[name]
    if name in V0_REPLACEMENTS:
        from .errors import V0Api

        raise V0Api(
            "mergexp.%s is the mergexp v0 API; in v1 use %s, after 'from mergexp import *'" % (name, V0_REPLACEMENTS[name])
        )
    raise AttributeError("module 'mergexp' has no attribute %r" % name)
