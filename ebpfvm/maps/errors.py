"""Errors of the maps' Python API, and the fault a helper raises for a map misuse.

The Python API (``lookup``/``update``/``delete`` ...) reports what the
kernel's bpf(2) would return as an error as ``MapError`` carrying the same
``errno``. The BPF-side API never raises for a condition a program can cause:
it returns the kernel's ``-errno`` instead, exactly as the helpers do.
"""

from __future__ import annotations

import errno as _errno

from ..errors import ProgramFault, UserInputError

# The kernel's internal "not supported" errno (include/linux/errno.h), which
# some map operations return to programs and to bpf(2) alike.
ENOTSUPP = 524


def errno_name(err: int) -> str:
    if err == ENOTSUPP:
        return "ENOTSUPP"
    return _errno.errorcode.get(err, f"errno {err}")


class MapError(UserInputError):
    """A map operation from Python failed the way bpf(2) would: ``errno`` is
    the kernel's error number (positive), ``message`` says what was wrong."""

    def __init__(self, errno: int, message: str, map_name: str = "") -> None:
        self.errno = errno
        self.message = message
        self.map_name = map_name
        where = f"map {map_name!r}: " if map_name else ""
        super().__init__(f"{where}{errno_name(errno)}: {message}")


class MapFault(ProgramFault):
    """A helper got something no verified program could pass: a map of the
    wrong type, or a pointer that is not a ring buffer record."""

    def __init__(self, pc: int, message: str) -> None:
        self.message = message
        super().__init__(message, pc)
