"""The mergexp v0 API, as its v1 translation.

About a quarter of published Merge models are v0 scripts:

    import mergexp as mx
    from mergexp.machine import cores, memory, image
    from mergexp.net import capacity, latency, routing, static, addressing, ipv4
    from mergexp.unit import gb, mbps, ms
    net = mx.Topology('lan', routing == static)
    a = net.device('a', cores >= 4, memory >= gb(4), image == 'ubuntu:1804')
    a.props['group'] = 'servers'
    net.connect([a, net.device('b')], capacity == mbps(100))
    a.endpoints[0].ip.addrs = ['10.0.0.1/24']
    mx.experiment(net)

Each idiom is the v1 call it always meant (Topology is Network, device is
node, cores is proc.cores, memory/disk are their .capacity, props is
properties, endpoint.ip.addrs is the socket's addrs, the v0 modules hold the
v1 names), so the script compiles to the XIR of its v1 translation. The first
use earns one warning per script. What v1 cannot express (experiment storage:
Storage, mount) stays a refusal.
"""

import sys

from .source import _ours, warn

# The first v0 idiom the script used, if any (one warning per script).
_first = []


def used(what):
    """Note a use of the v0 API; the first one warns, at the user's line."""
    if _first:
        return
    _first.append(what)
    warn(
        "this model uses the mergexp v0 API (%s here, and maybe more); it compiles as its v1 translation "
        "(Network, net.node, proc.cores, memory.capacity, node.properties, link[node].socket.addrs, "
        "'from mergexp import *')" % what,
        user_location(),
    )


def user_location():
    """(line, column) of the innermost frame in the user's script: not this package, not the import machinery."""
    frame = sys._getframe(1)
    while frame is not None and (_ours(frame.f_code) or frame.f_code.co_filename.startswith("<frozen")):
        frame = frame.f_back
    if frame is None:
        return None
    return (frame.f_lineno, 1)


class Ip:
    """v0 `endpoint.ip`: its `addrs` are the socket's."""

    def __init__(self, socket):
        self._socket = socket

    @property
    def addrs(self):
        return self._socket.addrs

    @addrs.setter
    def addrs(self, value):
        used("endpoint.ip.addrs")
        self._socket.addrs = value

