"""Errors a model script can provoke.

Each carries a stable `code` that the compiler turns into a diagnostic code,
and optionally the place in the user's script it is about (for errors found
after the offending line ran, e.g. when the experiment is serialized).
"""


class MergexpError(Exception):
    code = "mergexp-error"

    def __init__(self, message, location=None):
        super().__init__(message)
        # (line, column), 1-based, in the user's script; None: take the traceback's.
        self.location = location


class ValueMismatch(MergexpError):
    """A constraint value of the wrong type, unit or range."""

    code = "mergexp-value"


class UnitMismatch(ValueMismatch):
    code = "mergexp-unit"


class AddressError(MergexpError):
    code = "mergexp-address"


class ElementMismatch(MergexpError):
    """A constraint given to an element it does not describe (capacity on a node)."""

    code = "mergexp-element"


class TopologyError(MergexpError):
    """A structural mistake: duplicate names, nodes from another network, ..."""

    code = "mergexp-topology"


class V0Api(MergexpError):
    """A use of the v0 API that v1 cannot express (experiment storage); the rest is translated (v0.py)."""

    code = "mergexp-v0-api"


class Sandbox(MergexpError):
    """Something a model may not do: open sockets, start processes, read files."""

    code = "mergexp-sandbox"
