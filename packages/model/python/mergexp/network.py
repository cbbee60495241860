"""The MX v1 topology: a Network of nodes whose sockets bind to links.

Link names: MX v1 has none, XIR needs one. A script may name a link
(`net.connect(nodes, name='wan')` or `link.name = 'wan'`); the others are
named `link0`, `link1`, ... in creation order, counting only unnamed links and
skipping names the script gave. The TypeScript modeling library uses the same
rule, so twin models compile to identical XIR.
"""

import ipaddress
import re

from .constraint import RX, Constraint, Property, split_constraints
from .errors import AddressError, ElementMismatch, TopologyError, V0Api, ValueMismatch
from . import v0
from .source import caller_location, warn

INGRESS_PROTOCOLS = ("tcp", "udp", "http", "https")
# Published models name the protocol bare: node.ingress(http, 8080).
tcp, udp, http, https = INGRESS_PROTOCOLS
# Values a script may have meant as names when it wrote addressing='ipv4'.
_NAMED_VALUES = ("ipv4", "static", "netem", "click", "virtio", "e1000", "e1000e", "rtl8139", "lte_4g", "wifi_ac")
_NAME_LIMIT = 253


def _check_name(what, name):
    if not isinstance(name, str) or name == "":
        raise ValueMismatch("%s: the name must be a non-empty string, got %r" % (what, name))
    if len(name) > _NAME_LIMIT:
        raise ValueMismatch("%s: the name %r is longer than %d characters" % (what, name[:40] + "...", _NAME_LIMIT))


def _refuse_keywords(what, keywords):
    """Constraints are comparisons (addressing == ipv4), not keyword arguments; say how to write them."""
    if not keywords:
        return
    k, v = next(iter(keywords.items()))
    value = v if isinstance(v, str) and v in _NAMED_VALUES else repr(v)
    raise ValueMismatch(
        "%s: constraints are comparisons, not keyword arguments; write %s == %s instead of %s=%r"
        % (what, k, value, k, v)
    )


class Network:
    def __init__(self, name, *constraints, **keywords):
        _check_name("Network(...)", name)
        _refuse_keywords("Network(%r, ...)" % name, keywords)
        self.name = name
        self.id = name
        self.nodes = []
        self.links = []
        self._by_name = {}
        self._socket_defaults = []
        self.parameters = {}
        self.location = caller_location()
        own, _ = split_constraints(constraints, "network", "Network(%r, ...)" % name)
        for c in own:
            if c.prop == "experimentnetresolution":
                resolve = c.value if c.op == "==" else not c.value
                self.parameters["nameResolution"] = "experiment" if resolve else "infranet"
            else:
                self.parameters[c.prop] = c.value

    def node(self, name, *constraints, **keywords):
        """A new node; constraints like proc.cores >= 4, memory.capacity >= gb(8), image == '2004'."""
        _check_name("net.node(...)", name)
        _refuse_keywords("net.node(%r, ...)" % name, keywords)
        prior = self._by_name.get(name)
        if prior is not None:
            raise TopologyError(
                "net.node(%r): a node named %r already exists (made at line %s)" % (name, name, _line(prior.location))
            )
        n = Node(self, name, constraints)
        self.nodes.append(n)
        self._by_name[name] = n
        return n

    def connect(self, nodes, *constraints, name=None, **keywords):
        """A link joining `nodes` (two: point to point; more: a LAN). Returns the link."""
        _refuse_keywords("net.connect(...)", keywords)
        if isinstance(nodes, Node):
            raise ValueMismatch("net.connect(...): pass a list of nodes, e.g. net.connect([a, b])")
        try:
            nodes = list(nodes)
        except TypeError:
            raise ValueMismatch("net.connect(...): pass a list of nodes, got %r" % (nodes,)) from None
        for n in nodes:
            self._check_member("net.connect(...)", n)
        own, ports = split_constraints(constraints, "link", "net.connect(...)")
        sockets = [n.socket(*ports) for n in nodes]
        return self._link(sockets, own, name, "net.connect(...)")

    def connect_sockets(self, sockets, *constraints, name=None):
        """A link joining sockets made with node.socket(...)."""
        sockets = list(sockets)
        for s in sockets:
            if not isinstance(s, Socket):
                raise ValueMismatch("net.connect_sockets(...): expected sockets from node.socket(), got %r" % (s,))
            self._check_member("net.connect_sockets(...)", s.node)
            if s.link is not None:
                raise TopologyError(
                    "net.connect_sockets(...): socket %d of %s is already on a link (%s)" % (s.index, s.node.name, s.link)
                )
        own, ports = split_constraints(constraints, "link", "net.connect_sockets(...)")
        for s in sockets:
            s.constraints.extend(ports)
        return self._link(sockets, own, name, "net.connect_sockets(...)")

    def _link(self, sockets, constraints, name, what):
        if len(sockets) < 2:
            raise TopologyError("%s: a link joins two or more nodes, got %d" % (what, len(sockets)))
        seen = set()
        for s in sockets:
            if s.node.name in seen:
                raise TopologyError("%s: node %s appears twice on one link" % (what, s.node.name))
            seen.add(s.node.name)
        if name is not None:
            _check_name(what, name)
            for other in self.links:
                if other.name == name:
                    raise TopologyError(
                        "%s: a link named %r already exists (made at line %s)" % (what, name, _line(other.location))
                    )
        link = Link(self, name, sockets, constraints)
        self.links.append(link)
        return link

    def _check_member(self, what, n):
        if not isinstance(n, Node):
            raise ValueMismatch("%s: expected nodes made with net.node(...), got %r" % (what, n))
        if n.network is not self:
            raise TopologyError("%s: node %s belongs to another Network (%s)" % (what, n.name, n.network.name))

    def useSRIOV(self, val=True):
        """Sockets made from now on ask for an SR-IOV virtual function (port.vf == True)."""
        from .constraint import port

        self._socket_defaults = [port.vf == True] if val else []  # noqa: E712 - builds a constraint

    def device(self, name, *constraints):
        """v0: net.node."""
        v0.used("net.device")
        return self.node(name, *constraints)

    def __repr__(self):
        return "Network(%r: %d nodes, %d links)" % (self.name, len(self.nodes), len(self.links))

    def link_names(self):
        """Each link's XIR name: its own, or the next free `link<k>`."""
        used = {link.name for link in self.links if link.name is not None}
        names, auto = [], 0
        for link in self.links:
            if link.name is not None:
                if not isinstance(link.name, str) or link.name == "":
                    raise ValueMismatch("link.name must be a non-empty string, got %r" % (link.name,), link.location)
                if link.name in names:
                    raise TopologyError("two links are named %r" % link.name, link.location)
                names.append(link.name)
                continue
            while "link%d" % auto in used:
                auto += 1
            names.append("link%d" % auto)
            auto += 1
        return names

    def xir(self):
        names = self.link_names()
        return {
            "xir": "1.0",
            "name": self.name,
            "parameters": dict(self.parameters),
            "nodes": [n.xir() for n in self.nodes],
            "links": [link.xir(name) for link, name in zip(self.links, names)],
        }

    def source_map(self):
        """XIR path -> (line, column) of the script line that made it ("" is the network)."""
        out = {"": self.location}
        for i, n in enumerate(self.nodes):
            path = "nodes[%d]" % i
            out[path] = n.location
            for j, c in enumerate(n.constraints):
                out["%s.constraints[%d]" % (path, j)] = c.location
            if n.image_location:
                out[path + ".image"] = n.image_location
            for s in n.sockets:
                sp = "%s.sockets[%d]" % (path, s.index)
                out[sp] = s.location
                for k in range(len(s.addrs)):
                    out["%s.addrs[%d]" % (sp, k)] = s.addrs_location
                for k, c in enumerate(s.constraints):
                    out["%s.constraints[%d]" % (sp, k)] = c.location
        for i, link in enumerate(self.links):
            path = "links[%d]" % i
            out[path] = link.location
            for j, c in enumerate(link.constraints):
                out["%s.constraints[%d]" % (path, j)] = c.location
        return {k: v for k, v in out.items() if v is not None}


def _line(location):
    return location[0] if location else "?"


class Node:
    def __init__(self, network, name, constraints):
        self.network = network
        self.name = name
        self.location = caller_location()
        self.image = None
        self.image_location = None
        self.constraints = []
        self.sockets = []
        self.properties = {}
        self.ingresses = []
        own, _ = split_constraints(constraints, "node", "net.node(%r, ...)" % name)
        for c in own:
            if c.prop == "image":
                self.image = c.value
                self.image_location = c.location
            else:
                self.constraints.append(c)

    @property
    def id(self):
        return self.name

    def socket(self, *constraints):
        """A new socket (network interface) on this node, with port constraints."""
        own, _ = split_constraints(constraints, "socket", "%s.socket(...)" % self.name)
        s = Socket(self, len(self.sockets), self.network._socket_defaults + own)
        self.sockets.append(s)
        return s

    def color(self, c):
        """MX v1 visualization hint; XIR 1.0 has no place for it."""
        warn("%s.color(%r) has no effect: XIR 1.0 does not carry visualization hints" % (self.name, c), caller_location())

    def size(self, c):
        """MX v1 visualization hint; XIR 1.0 has no place for it."""
        warn("%s.size(%r) has no effect: XIR 1.0 does not carry visualization hints" % (self.name, c), caller_location())

    def ingress(self, protocol, port):
        """Expose `port` of this node outside the experiment."""
        if protocol not in INGRESS_PROTOCOLS:
            raise ValueMismatch(
                "%s.ingress(%r, ...): unknown protocol; valid are %s" % (self.name, protocol, ", ".join(INGRESS_PROTOCOLS))
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueMismatch("%s.ingress(%r, %r): the port must be a whole number 1..65535" % (self.name, protocol, port))
        self.ingresses.append({"protocol": protocol, "port": int(port)})

    @property
    def props(self):
        """v0: node.properties."""
        v0.used("node.props")
        return self.properties

    @property
    def endpoints(self):
        """v0: the node's sockets, in the order its links were made, each as its link's endpoint (.ip.addrs)."""
        v0.used("node.endpoints")
        return [Endpoint(s.link, s) for s in self.sockets]

    def __getattr__(self, attr):
        if attr == "mount":
            raise V0Api("node.mount(...) is the mergexp v0 API for experiment storage, which mergexp v1 cannot express")
        hint = _NODE_HINTS.get(attr)
        raise AttributeError(
            "Node has no attribute %r (it has name, properties, socket(), ingress())%s" % (attr, "; " + hint if hint else "")
        )

    def __repr__(self):
        return "Node(%r)" % self.name

    def xir(self):
        out = {
            "name": self.name,
            "constraints": [c.xir() for c in self.constraints],
            "sockets": [s.xir() for s in self.sockets],
            "properties": _properties("node %s" % self.name, self.properties, self.location),
        }
        if self.image is not None:
            out["image"] = self.image
        if self.ingresses:
            out["ingress"] = [dict(i) for i in self.ingresses]
        return out


# What scripts reached for on a node that a model does not do, and where it is done instead.
_RUN_ON_NODES = "a model only describes the experiment; run programs on its nodes once it is materialized (mrg exec NODE RID -- COMMAND)"
_NODE_HINTS = {
    "add_ip": "addresses belong to a node's end of a link: link[node].socket.addrs = ip4('10.0.0.1/24')",
    "addrs": "addresses belong to a node's end of a link: link[node].socket.addrs = ip4('10.0.0.1/24')",
    "execute": _RUN_ON_NODES,
    "run": _RUN_ON_NODES,
    "start": _RUN_ON_NODES,
    "stop": _RUN_ON_NODES,
}


class Socket:
    def __init__(self, node, index, constraints):
        self.node = node
        self.index = index
        self.constraints = list(constraints)
        self.link = None
        self.location = caller_location()
        self.addrs_location = None
        self._addrs = []

    @property
    def addrs(self):
        return self._addrs

    @addrs.setter
    def addrs(self, value):
        if isinstance(value, str):
            value = [value]
        try:
            value = list(value)
        except TypeError:
            raise AddressError("socket.addrs = %r: expected ip4('10.0.0.1/24')" % (value,)) from None
        self._addrs = [_cidr(a, "socket.addrs") for a in value]
        self.addrs_location = caller_location()

    def __repr__(self):
        return "Socket(%s.%d)" % (self.node.name, self.index)

    def xir(self):
        where = self.addrs_location or self.location
        return {
            "index": self.index,
            # A script may have appended to the list; check again.
            "addrs": [_cidr(a, "%s socket %d" % (self.node.name, self.index), where) for a in self._addrs],
            "constraints": [c.xir() for c in self.constraints],
        }


class Endpoint:
    """One node's end of a link: `link[node]`. Its socket holds the addresses."""

    def __init__(self, link, socket):
        self.link = link
        self.socket = socket

    @property
    def node(self):
        return self.socket.node

    @property
    def ip(self):
        """v0: endpoint.ip.addrs is the socket's addrs."""
        return v0.Ip(self.socket)

    def spec(self, *constraints):
        """Port constraints for this end of the link: link[x].spec(nic == virtio). Returns the endpoint."""
        what = "link[%s].spec(...)" % self.socket.node.name
        own, _ = split_constraints(constraints, "socket", what)
        self.socket.constraints.extend(own)
        return self

    def __getattr__(self, attr):
        raise AttributeError("Endpoint has no attribute %r (it has socket, node, spec())" % attr)

    def __repr__(self):
        return "Endpoint(%s.%d)" % (self.socket.node.name, self.socket.index)


class Link:
    def __init__(self, network, name, sockets, constraints):
        self.network = network
        self.name = name
        self.location = caller_location()
        self.constraints = list(constraints)
        self.properties = {}
        self.endpoints = []
        for s in sockets:
            s.link = self
            self.endpoints.append(Endpoint(self, s))

    @property
    def id(self):
        return self.name

    def __getitem__(self, key):
        for e in self.endpoints:
            if e.socket.node is key or e.socket.node.name == key:
                return e
        if isinstance(key, int) and not isinstance(key, bool) and -len(self.endpoints) <= key < len(self.endpoints):
            return self.endpoints[key]
        joined = ", ".join(e.socket.node.name for e in self.endpoints)
        who = key.name if isinstance(key, Node) else repr(key)
        raise TopologyError("link[%s]: that node is not on this link (it joins %s)" % (who, joined))

    def toward(self, node, *constraints):
        """One direction of this link, the one that delivers to `node`:
        link.toward(b, latency == ms(30), capacity <= mbps(2)). Takes capacity,
        latency and loss constraints and gives them to b's socket as rx.*; the
        other directions keep the link's own values. Returns the link."""
        who = node.name if isinstance(node, Node) else repr(node)
        what = "link.toward(%s, ...)" % who
        end = None
        for e in self.endpoints:
            if e.socket.node is node or (isinstance(node, str) and e.socket.node.name == node):
                end = e
                break
        if end is None:
            joined = ", ".join(e.socket.node.name for e in self.endpoints)
            raise TopologyError("%s: that node is not on this link (it joins %s)" % (what, joined))
        allowed = ", ".join(RX)
        made = []
        location = caller_location()
        for c in constraints:
            if isinstance(c, Property):
                raise ValueMismatch("%s: %s given without a comparison, e.g. %s" % (what, c.prop, c._example()))
            if not isinstance(c, Constraint):
                raise ValueMismatch(
                    "%s: expected constraints on %s like latency == ms(30), got %r (%s)"
                    % (what, allowed, c, type(c).__name__)
                )
            if c.element != "link" or c.prop not in RX:
                raise ElementMismatch(
                    "%s: %s cannot be set for one direction of a link; toward takes %s (e.g. latency == ms(30))"
                    % (what, c, allowed)
                )
            made.append(Constraint(RX[c.prop], c.op, c.value, location))
        end.socket.constraints.extend(made)
        return self

    @property
    def props(self):
        """v0: link.properties."""
        v0.used("link.props")
        return self.properties

    def __iter__(self):
        return iter(self.endpoints)

    def __len__(self):
        return len(self.endpoints)

    def __repr__(self):
        return "Link(%s%s)" % (self.name + ": " if self.name else "", ", ".join(e.socket.node.name for e in self.endpoints))

    def xir(self, name):
        return {
            "name": name,
            "endpoints": [{"node": e.socket.node.name, "socket": e.socket.index} for e in self.endpoints],
            "constraints": [c.xir() for c in self.constraints],
            "properties": _properties("link %s" % name, self.properties, self.location),
        }


def _properties(what, props, location):
    if not isinstance(props, dict):
        raise ValueMismatch("%s: properties must be a dict, got %r" % (what, props), location)
    out = {}
    for k, v in props.items():
        if not isinstance(k, str) or k == "":
            raise ValueMismatch("%s: property names must be non-empty strings, got %r" % (what, k), location)
        if isinstance(v, (list, tuple)):
            for x in v:
                _scalar(what, k, x, location)
            out[k] = list(v)
        else:
            out[k] = _scalar(what, k, v, location)
    return out


def _scalar(what, key, v, location):
    if isinstance(v, (str, bool, int)) or (isinstance(v, float) and v == v and v not in (float("inf"), float("-inf"))):
        return v
    raise ValueMismatch(
        "%s: property %r must be a string, number or boolean (or a list of them), got %r" % (what, key, v), location
    )


_CANONICAL = re.compile(r"(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})/(\d|[12]\d|3[0-2])")


def _cidr(text, what, location=None):
    # Fast path for the usual 'a.b.c.d/n' (ipaddress is slow for 100k sockets).
    m = _CANONICAL.fullmatch(text) if isinstance(text, str) else None
    if m is not None:
        a, b, c, d, n = (int(x) for x in m.groups())
        if a <= 255 and b <= 255 and c <= 255 and d <= 255:
            host = (a << 24) | (b << 16) | (c << 8) | d
            hostmask = (1 << (32 - n)) - 1
            if n > 30 or (host & hostmask not in (0, hostmask)):
                return text
    return _cidr_checked(text, what, location)


def _cidr_checked(text, what, location):
    if not isinstance(text, str):
        raise AddressError("%s: %r is not an address; write e.g. ip4('10.0.0.1/24')" % (what, text), location)
    if "/" not in text:
        raise AddressError(
            "%s: %r has no prefix length; write it as address/prefix, e.g. '%s/24'" % (what, text, text), location
        )
    try:
        iface = ipaddress.IPv4Interface(text)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError) as e:
        raise AddressError("%s: %r is not a valid IPv4 address/prefix (%s)" % (what, text, e), location) from None
    net = iface.network
    if net.prefixlen <= 30 and iface.ip in (net.network_address, net.broadcast_address):
        which = "network" if iface.ip == net.network_address else "broadcast"
        raise AddressError(
            "%s: %s is the %s address of %s; pick a host address, e.g. %s/%d"
            % (what, text, which, net, net.network_address + 1, net.prefixlen),
            location,
        )
    return str(iface)


def ip4(*addrs):
    """Validated IPv4 addresses in address/prefix form: ip4('10.0.0.1/24')."""
    out = []
    for a in addrs:
        if isinstance(a, (list, tuple)):
            out.extend(_cidr(x, "ip4(...)") for x in a)
        else:
            out.append(_cidr(a, "ip4(...)"))
    if not out:
        raise AddressError("ip4(): give at least one address, e.g. ip4('10.0.0.1/24')")
    return out


# The network the script chose with experiment(net); read by the runner.
chosen = {}


def experiment(net):
    """Make this script's experiment the network `net`."""
    if not isinstance(net, Network):
        raise ValueMismatch("experiment(...): expected a Network, got %r" % (net,))
    prior = chosen.get("network")
    if prior is not None and prior is not net:
        raise TopologyError(
            "experiment(...) was already called with Network %r (line %s); a script describes one experiment"
            % (prior.name, _line(chosen.get("location")))
        )
    chosen["network"] = net
    chosen["location"] = caller_location()
