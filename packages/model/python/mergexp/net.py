"""mergexp.net, the v0 home of link and network properties: the v1 ones (see v0.py)."""

from . import v0
from .constraint import (  # noqa: F401
    addressing,
    capacity,
    click,
    emulation,
    experimentnetresolution,
    ipv4,
    kind,
    latency,
    layer,
    loss,
    lte_4g,
    netem,
    routing,
    static,
    wifi_ac,
)

v0.used("from mergexp.net import ...")
