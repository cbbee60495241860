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
    platform,
    port,
    proc,
    routing,
    static,
    virtio,
    wifi_ac,
)
from .errors import MergexpError
from .network import Endpoint, Link, Network, Node, Socket, experiment, ip4
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
    # node
    "proc",
    "memory",
    "disk",
    "gpu",
    "metal",
    "image",
    "host",
    "platform",
    # socket
    "port",
    "virtio",
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

# v0 names and what replaces them in v1; shared with the runner for NameError hints.
V0_REPLACEMENTS = {
    "Topology": "Network(name, *constraints)",
    "device": "net.node(name, *constraints)",
    "cores": "proc.cores (e.g. proc.cores >= 4)",
    "arch": "platform (e.g. platform == 'x86_64')",
    "Storage": "nothing: experiment storage is not part of mergexp v1",
    "connect": "net.connect(nodes, *constraints)",
}


def __getattr__(name):
    if name in V0_REPLACEMENTS:
        from .errors import V0Api

        raise V0Api(
            "mergexp.%s is the mergexp v0 API; in v1 use %s, after 'from mergexp import *'" % (name, V0_REPLACEMENTS[name])
        )
    raise AttributeError("module 'mergexp' has no attribute %r" % name)
