"""Where in the user's script an element was made.

Elements remember the line that made them so that problems found later (when
the experiment is serialized, or by the compiler's static analysis) can still
point at the user's code.
"""

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Per code object: is it ours, and its instructions' positions. Models make
# elements in loops, so the same few code objects come back many times.
_OURS = {}
_POSITIONS = {}


def _ours(code):
    ours = _OURS.get(code)
    if ours is None:
        ours = _OURS[code] = os.path.dirname(os.path.abspath(code.co_filename)) == _PACKAGE_DIR
    return ours


def caller_location():
    """(line, column) of the innermost frame outside this package, 1-based."""
    frame = sys._getframe(1)
    while frame is not None and _ours(frame.f_code):
        frame = frame.f_back
    if frame is None:
        return None
    code = frame.f_code
    positions = _POSITIONS.get(code)
    if positions is None:
        try:
            positions = _POSITIONS[code] = list(code.co_positions())
        except AttributeError:  # before Python 3.11: lines only
            positions = _POSITIONS[code] = []
    i = frame.f_lasti // 2
    if i < len(positions):
        line, _, column, _ = positions[i]
        if line is not None:
            return (line, column + 1 if column is not None else 1)
    return (frame.f_lineno, 1)


# Warnings the script earned: (message, (line, column) or None). Read by the runner.
WARNINGS = []


def warn(message, location=None):
    WARNINGS.append((message, location))
