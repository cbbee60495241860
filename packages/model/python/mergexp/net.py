"""mergexp.net was a module of the mergexp v0 API; importing it says what replaced it."""

from .errors import V0Api

raise V0Api("mergexp.net is the mergexp v0 API; in v1 capacity, latency, loss, routing, static, addressing, ipv4 come with 'from mergexp import *'")
