"""mergexp.unit was a module of the mergexp v0 API; importing it says what replaced it."""

from .errors import V0Api

raise V0Api("mergexp.unit is the mergexp v0 API; in v1 the units (kb..eb, kbps..gbps, us, ms, s) come with 'from mergexp import *'")
