"""Where in the user's script an element was made.

Elements remember the line that made them so that problems found later (when
the experiment is serialized, or by the compiler's static analysis) can still
point at the user's code.
"""

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def caller_location():
    """(line, column) of the innermost frame outside this package, 1-based."""
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame = frame.f_back
    if frame is None:
        return None
    line, column = frame.f_lineno, 1
    # Python 3.11 knows the column of each instruction.
    try:
        positions = list(frame.f_code.co_positions())
        pos = positions[frame.f_lasti // 2]
        if pos[0] is not None:
            line = pos[0]
        if pos[2] is not None:
            column = pos[2] + 1
    except (AttributeError, IndexError):
        pass
    return (line, column)


# Warnings the script earned: (message, (line, column) or None). Read by the runner.
WARNINGS = []


def warn(message, location=None):
    WARNINGS.append((message, location))
