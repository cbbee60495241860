"""mergexp.machine, the v0 home of node properties: v0 `cores` is proc.cores,
`memory` memory.capacity, `disk` disk.capacity, `arch` platform (see v0.py)."""

from . import v0
from .constraint import disk as _disk
from .constraint import gpu, host, image, metal, platform, proc  # noqa: F401
from .constraint import memory as _memory

cores = proc.cores
memory = _memory.capacity
disk = _disk.capacity
arch = platform

v0.used("from mergexp.machine import ...")
