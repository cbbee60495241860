"""Constraints: `proc.cores >= 4` builds an XIR constraint {prop, op, value}.

Each property knows the element it describes (node, socket, link, network),
its value type and unit, and, for closed sets, the values it allows; the
comparison checks the value there and then so that mistakes point at the line
that made them.
"""

import math

from .errors import ElementMismatch, UnitMismatch, ValueMismatch
from .source import caller_location, warn
from .units import UNIT_NAMES, plain, unit_of

NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "i40e", "mlx5", "ixgbe", "bnxt")

# Where a constraint may be given, in the user's terms.
ELEMENT_CALLS = {
    "node": "net.node(name, ...)",
    "socket": "net.connect(nodes, ...) or node.socket(...)",
    "link": "net.connect(nodes, ...)",
    "network": "Network(name, ...)",
}

# A plain number this small, for a property with a unit, is almost surely a
# forgotten unit: `memory.capacity >= 8` is 8 bytes.
_SUSPICIOUS = {"bytes": (2**20, "gb"), "bps": (1000, "mbps"), "ns": (1000, "ms")}


class Property:
    """A constrainable property. Comparing it with a value makes a Constraint."""

    def __init__(
        self, prop, element, kind, example, unit=None, allowed=None, ops=None, minimum=None, maximum=None
    ):
        self.prop = prop
        self.example = example
        self.element = element
        self.vtype = kind  # "int" | "number" | "bool" | "str"
        self.unit = unit
        self.allowed = allowed
        self.ops = ops
        self.minimum = minimum
        self.maximum = maximum

    def __eq__(self, value):
        return self._make("==", value)

    def __ne__(self, value):
        return self._make("!=", value)

    def __lt__(self, value):
        return self._make("<", value)

    def __le__(self, value):
        return self._make("<=", value)

    def __gt__(self, value):
        return self._make(">", value)

    def __ge__(self, value):
        return self._make(">=", value)

    __hash__ = object.__hash__

    def __bool__(self):
        raise ValueMismatch(
            "%s is a property, not a condition: compare it, e.g. %s" % (self.prop, self._example()),
        )

    def __repr__(self):
        return self.prop

    def __getattr__(self, attr):
        # Only for names not found: say what a property is for (v0's `memory` is already memory.capacity).
        prop = self.__dict__.get("prop")
        if prop is None or attr.startswith("__"):
            raise AttributeError(attr)
        if prop.endswith("." + attr):
            short = prop[: -len(attr) - 1]
            raise AttributeError(
                "'%s' is already the property %s (the v0 name mergexp.machine gives it): compare it as it is, "
                "e.g. %s" % (short, prop, self._example().replace(prop, short, 1))
            )
        raise AttributeError("%s is a property, it has no '%s': compare it, e.g. %s" % (prop, attr, self._example()))

    def _example(self):
        return self.example or "%s == 4" % self.prop

    def _make(self, op, value):
        if self.ops is not None and op not in self.ops:
            raise ValueMismatch(
                "%s %s ...: %s only accepts %s" % (self.prop, op, self.prop, " or ".join(self.ops)),
            )
        return Constraint(self, op, self._check(op, value), caller_location())

    def _check(self, op, value):
        p = self.prop
        if self.vtype == "bool":
            if not isinstance(value, bool):
                raise ValueMismatch("%s %s %r: expected True or False" % (p, op, value))
            return value
        if self.vtype == "str":
            if not isinstance(value, str) or value == "":
                raise ValueMismatch("%s %s %r: expected a non-empty string, e.g. %s" % (p, op, value, self._example()))
            if self.allowed is not None and value not in self.allowed:
                raise ValueMismatch(
                    "%s %s %r: unknown value; valid values are %s" % (p, op, value, ", ".join(self.allowed)),
                )
            return value
        # Numbers.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueMismatch("%s %s %r: expected a number, e.g. %s" % (p, op, value, self._example()))
        if not math.isfinite(value):
            raise ValueMismatch("%s %s %r: expected a finite number" % (p, op, value))
        have = unit_of(value)
        if have is not None and have != self.unit:
            if self.unit is None:
                raise UnitMismatch(
                    "%s %s %r: a plain count was expected, not %s; write e.g. %s"
                    % (p, op, value, UNIT_NAMES[have], self._example()),
                )
            raise UnitMismatch(
                "%s %s %r: %s was expected, not %s; write e.g. %s"
                % (p, op, value, UNIT_NAMES.get(self.unit, self.unit), UNIT_NAMES[have], self._example()),
            )
        if have is None and self.unit in _SUSPICIOUS and 0 < value < _SUSPICIOUS[self.unit][0]:
            fn = _SUSPICIOUS[self.unit][1]
            warn(
                "%s %s %r is %r %s; did you mean %s(%r)?" % (p, op, value, value, self.unit, fn, value),
                caller_location(),
            )
        if self.vtype == "int" and not float(value).is_integer():
            raise ValueMismatch("%s %s %r: expected a whole number" % (p, op, value))
        if self.minimum is not None and value < self.minimum:
            raise ValueMismatch("%s %s %r: must be at least %s" % (p, op, value, self.minimum))
        if self.maximum is not None and value > self.maximum:
            if self.unit == "fraction":
                raise ValueMismatch("%s %s %r: loss is a fraction between 0 and 1 (5%% is 0.05)" % (p, op, value))
            raise ValueMismatch("%s %s %r: must be at most %s" % (p, op, value, self.maximum))
        return plain(value)


class Constraint:
    """`prop op value`, made where the comparison was written."""

    def __init__(self, prop, op, value, location):
        self.property = prop
        self.op = op
        self.value = value
        self.location = location

    @property
    def prop(self):
        return self.property.prop

    @property
    def element(self):
        return self.property.element

    def __bool__(self):
        # `1 < proc.cores < 8` would silently keep only the second comparison.
        raise ValueMismatch(
            "%s: a constraint is not a truth value; for a range pass two constraints, e.g. "
            "proc.cores >= 2, proc.cores <= 8" % self,
        )

    def __repr__(self):
        return "%s %s %r" % (self.prop, self.op, self.value)

    def xir(self):
        return {"prop": self.prop, "op": self.op, "value": self.value}


# A constraint each element takes, for "expected constraints like ...".
_ELEMENT_EXAMPLES = {
    "node": "proc.cores >= 4",
    "socket": "port.model == e1000",
    "link": "latency == ms(10)",
    "network": "addressing == ipv4",
}


def split_constraints(constraints, element, what):
    """Check each argument is a constraint on `element`; port constraints on links go to sockets."""
    own, ports = [], []
    for c in constraints:
        if isinstance(c, Property):
            raise ValueMismatch("%s: %s given without a comparison, e.g. %s" % (what, c.prop, c._example()))
        if isinstance(c, _Namespace):
            raise ValueMismatch("%s: %s is not a property; %s" % (what, c._name, c._hint()))
        if not isinstance(c, Constraint):
            raise ValueMismatch(
                "%s: expected constraints like %s, got %r (%s)" % (what, _ELEMENT_EXAMPLES[element], c, type(c).__name__),
            )
        if c.element == element:
            own.append(c)
        elif element == "link" and c.element == "socket":
            ports.append(c)
        else:
            raise ElementMismatch(
                "%s: %s is a %s constraint; give it to %s" % (what, c, c.element, ELEMENT_CALLS[c.element]),
            )
    return own, ports


class _Namespace:
    """`proc`, `memory`, `disk`, `port`, `gpu`: holders of properties, not properties."""

    def __init__(self, name, **props):
        self._name = name
        self.__dict__.update(props)

    def _hint(self):
        names = sorted(k for k in self.__dict__ if not k.startswith("_"))
        return "use %s" % " or ".join("%s.%s" % (self._name, n) for n in names)

    def _refuse(self, *_):
        raise ValueMismatch("%s is not a property in mergexp v1; %s (e.g. %s)" % (self._name, self._hint(), self._ex()))

    def _compare(op):
        def compare(self, value):
            # v0 compared memory and disk themselves: their capacity.
            if self._name in ("memory", "disk"):
                from . import v0

                v0.used("comparing %s itself" % self._name)
                return self.capacity._make(op, value)
            self._refuse()

        return compare

    def _ex(self):
        first = [v for k, v in self.__dict__.items() if not k.startswith("_")][0]
        return first._example()

    __eq__ = _compare("==")
    __ne__ = _compare("!=")
    __lt__ = _compare("<")
    __le__ = _compare("<=")
    __gt__ = _compare(">")
    __ge__ = _compare(">=")
    __hash__ = object.__hash__

    def __repr__(self):
        return self._name


# Node properties.
proc = _Namespace("proc", cores=Property("proc.cores", "node", "int", "proc.cores >= 4", minimum=0))
memory = _Namespace(
    "memory",
    capacity=Property("memory.capacity", "node", "number", "memory.capacity >= gb(8)", unit="bytes", minimum=0),
)
disk = _Namespace(
    "disk",
    capacity=Property("disk.capacity", "node", "number", "disk.capacity >= gb(40)", unit="bytes", minimum=0),
)
gpu = _Namespace(
    "gpu",
    model=Property("gpu.model", "node", "str", "gpu.model == 'a100'"),
    count=Property("gpu.count", "node", "int", "gpu.count >= 1", minimum=0),
)
metal = Property("metal", "node", "bool", "metal == True", ops=("==", "!="))


class _Virt(Property):
    """`virt == True`: a virtual node (VM or container); `virt.kind == "vm"` or "container" says which."""

    def __init__(self):
        super().__init__("virt", "node", "bool", "virt == True", ops=("==", "!="))
        self.kind = Property("virt.kind", "node", "str", "virt.kind == 'vm'", allowed=VIRT_KINDS)


VIRT_KINDS = ("vm", "container")
virt = _Virt()
# Profile settings: what a virtual node is given (set with ==), not what its host has.
cpu = _Namespace(
    "cpu",
    share=Property("cpu.share", "node", "number", "cpu.share == 0.5", ops=("==",), minimum=0.01, maximum=1),
)
clock = _Namespace(
    "clock",
    dilation=Property("clock.dilation", "node", "number", "clock.dilation == 10", ops=("==",), minimum=1, maximum=1000),
)
platform = Property("platform", "node", "str", "platform == 'x86_64'")
host = Property("host", "node", "str", "host == 'x0'")
# image == '2004' sets the node's image rather than constraining its host.
image = Property("image", "node", "str", "image == '2004'", ops=("==",))

# Socket (port) properties.
port = _Namespace(
    "port",
    model=Property("port.model", "socket", "str", "port.model == e1000", allowed=NIC_MODELS),
    capacity=Property("port.capacity", "socket", "number", "port.capacity == gbps(10)", unit="bps", minimum=0),
    queues=Property("port.queues", "socket", "int", "port.queues == 4", minimum=1),
    # An SR-IOV virtual function; not an XIR-known property (the compiler warns).
    vf=Property("port.vf", "socket", "bool", "port.vf == True", ops=("==", "!=")),
)
# `nic == virtio`: the NIC model of a socket (port.model), as the seed writes it.
nic = port.model
virtio, e1000, e1000e, rtl8139 = "virtio", "e1000", "e1000e", "rtl8139"

# Link properties.
capacity = Property("capacity", "link", "number", "capacity == mbps(100)", unit="bps", minimum=0)
latency = Property("latency", "link", "number", "latency == ms(10)", unit="ns", minimum=0)
loss = Property("loss", "link", "number", "loss == 0.05 (5%)", unit="fraction", minimum=0, maximum=1)
kind = Property("kind", "link", "str", "kind == wifi_ac")
layer = Property("layer", "link", "int", "layer == 2", minimum=1, maximum=3)
lte_4g, wifi_ac = "lte_4g", "wifi_ac"

# One direction of a link (what it delivers to one socket), made by link.toward(node, ...)
# from the link properties above; not exported, so a script has one way to say it.
RX = {
    "capacity": Property("rx.capacity", "socket", "number", "capacity == mbps(2)", unit="bps", minimum=0),
    "latency": Property("rx.latency", "socket", "number", "latency == ms(30)", unit="ns", minimum=0),
    "loss": Property("rx.loss", "socket", "number", "loss == 0.01", unit="fraction", minimum=0, maximum=1),
}

# Network parameters.
addressing = Property("addressing", "network", "str", "addressing == ipv4", allowed=("ipv4",), ops=("==",))
routing = Property("routing", "network", "str", "routing == static", allowed=("static",), ops=("==",))
emulation = Property(
    "emulation", "network", "str", "emulation == netem", allowed=("netem", "click"), ops=("==",)
)
experimentnetresolution = Property(
    "experimentnetresolution", "network", "bool", "experimentnetresolution == False", ops=("==", "!=")
)
ipv4, static, netem, click = "ipv4", "static", "netem", "click"
