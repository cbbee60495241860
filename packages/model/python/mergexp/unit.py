"""mergexp.unit, the v0 home of the units: the v1 units (see v0.py)."""

from . import v0
from .units import bps, eb, gb, gbps, kb, kbps, mb, mbps, ms, ns, pb, pbps, s, tb, tbps, us  # noqa: F401

v0.used("from mergexp.unit import ...")
