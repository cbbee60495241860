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


def bytes_(n):
    return _quantity(n, 1, "bytes", "bytes")


def kb(n):
    return _quantity(n, _KiB, "bytes", "kb")


def mb(n):
    return _quantity(n, _KiB**2, "bytes", "mb")


def gb(n):
    return _quantity(n, _KiB**3, "bytes", "gb")


def tb(n):
    return _quantity(n, _KiB**4, "bytes", "tb")


def pb(n):
    return _quantity(n, _KiB**5, "bytes", "pb")


def eb(n):
    return _quantity(n, _KiB**6, "bytes", "eb")


def bps(n):
    return _quantity(n, 1, "bps", "bps")


def kbps(n):
    return _quantity(n, 10**3, "bps", "kbps")


def mbps(n):
    return _quantity(n, 10**6, "bps", "mbps")


def gbps(n):
    return _quantity(n, 10**9, "bps", "gbps")


def tbps(n):
    return _quantity(n, 10**12, "bps", "tbps")


def pbps(n):
    return _quantity(n, 10**15, "bps", "pbps")


def ns(n):
    return _quantity(n, 1, "ns", "ns")


def us(n):
    return _quantity(n, 10**3, "ns", "us")


def ms(n):
    return _quantity(n, 10**6, "ns", "ms")


def s(n):
    return _quantity(n, 10**9, "ns", "s")
