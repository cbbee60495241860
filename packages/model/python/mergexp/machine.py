"""mergexp.machine was a module of the mergexp v0 API; importing it says what replaced it."""

from .errors import V0Api

raise V0Api("mergexp.machine is the mergexp v0 API; in v1 node constraints come with 'from mergexp import *': memory.capacity (v0 memory), proc.cores (v0 cores), image, metal")
