"""Units: every quantity is a number in its XIR base unit.

  bytes   kb .. eb (binary: kb == 1024 bytes)
  bps     bps .. pbps (decimal: mbps == 10**6 bits/s)
  ns      ns, us, ms, s

The numbers remember their unit so that `latency == gb(1)` is caught; plain
arithmetic on them (`gb(2) * 4`) gives plain numbers, which are taken as base
units, as MX v1 always did.
"""

import math

from .errors import ValueMismatch


_SCALES = {
    "bytes": (1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")),
    "bps": (1000, ("bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s", "Pbit/s")),
    "ns": (1000, ("ns", "us", "ms", "s")),
}


class _Quantity:
    unit = None

    def __repr__(self):
        # In the user's terms: 8 GiB, 100 Mbit/s, 10 ms.
        base, names = _SCALES[self.unit]
        v, i = float(self), 0
        while v >= base and i < len(names) - 1:
            v /= base
            i += 1
        return "%s %s" % (int(v) if v.is_integer() else round(v, 2), names[i])

    def __str__(self):
        # Printing stays the plain number it was in MX v1.
        return (int if isinstance(self, int) else float).__repr__(self)


class IntQuantity(_Quantity, int):
    pass


class FloatQuantity(_Quantity, float):
    pass


UNIT_NAMES = {"bytes": "a size", "bps": "a bit rate", "ns": "a duration", "fraction": "a fraction"}


def _quantity(n, scale, unit, what):
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        raise ValueMismatch("%s(%r): expected a number" % (what, n))
    if not math.isfinite(n) or n < 0:
        raise ValueMismatch("%s(%r): expected a finite, non-negative number" % (what, n))
    v = n * scale
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    q = IntQuantity(v) if isinstance(v, int) else FloatQuantity(v)
    q.unit = unit
    return q


def unit_of(value):
    """The unit a number carries, or None for a plain number."""
    return value.unit if isinstance(value, _Quantity) else None


def plain(value):
    """The bare JSON number of a quantity."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else float(value)
    return value


_KiB = 1024


def _unit(name, scale, unit):
    """The constructor name(n): n of them, as a quantity in the base unit (gb(4) is 4 * 1024**3 bytes)."""

    def make(n):
        return _quantity(n, scale, unit, name)

    make.__name__ = make.__qualname__ = name
    return make


bytes_ = _unit("bytes", 1, "bytes")
kb = _unit("kb", _KiB, "bytes")
mb = _unit("mb", _KiB**2, "bytes")
gb = _unit("gb", _KiB**3, "bytes")
tb = _unit("tb", _KiB**4, "bytes")
pb = _unit("pb", _KiB**5, "bytes")
eb = _unit("eb", _KiB**6, "bytes")
bps = _unit("bps", 1, "bps")
kbps = _unit("kbps", 10**3, "bps")
mbps = _unit("mbps", 10**6, "bps")
gbps = _unit("gbps", 10**9, "bps")
tbps = _unit("tbps", 10**12, "bps")
pbps = _unit("pbps", 10**15, "bps")
ns = _unit("ns", 1, "ns")
us = _unit("us", 10**3, "ns")
ms = _unit("ms", 10**6, "ns")
s = _unit("s", 10**9, "ns")
