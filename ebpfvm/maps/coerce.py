"""Turning what a Python caller passes as a key or value into the exact bytes
the map stores.

Accepted: bytes-like objects (``bytes``, ``bytearray``, ``memoryview``), numpy
scalars, records and arrays (their ``tobytes()``: a structured record with
the map's layout is the natural way to pass a C struct), and, for sizes of
1, 2, 4 or 8 bytes, a Python ``int`` (little endian, as the ISA; negative
numbers in two's complement). The result must have exactly the expected size;
anything else is a ``MapError`` with EINVAL, as the kernel cannot know a
buffer's length and would read ``size`` bytes regardless.
"""

from __future__ import annotations

import errno
from typing import Any

from .errors import MapError

_INT_SIZES = (1, 2, 4, 8)


def to_bytes(obj: Any, size: int, what: str, map_name: str = "") -> bytes:
    """``obj`` as exactly ``size`` bytes (see the module docstring)."""
    data = _raw(obj, size, what, map_name)
    if len(data) != size:
        raise MapError(errno.EINVAL, f"{what} is {len(data)} bytes, the map's {what} size is {size}", map_name)
    return data


def _raw(obj: Any, size: int, what: str, map_name: str) -> bytes:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, bool):  # an int, but never meant as a key
        raise MapError(errno.EINVAL, f"{what} must be bytes, a numpy value or an int, got a bool", map_name)
    if isinstance(obj, int):
        if size not in _INT_SIZES:
            raise MapError(errno.EINVAL, f"an int {what} needs a {what} size of 1, 2, 4 or 8 bytes, "
                           f"not {size}: pass bytes", map_name)
        bits = 8 * size
        if not -(1 << (bits - 1)) <= obj < (1 << bits):
            raise MapError(errno.EINVAL, f"{what} {obj} does not fit in {size} bytes", map_name)
        return (obj & ((1 << bits) - 1)).to_bytes(size, "little")
    tobytes = getattr(obj, "tobytes", None)
    if callable(tobytes):  # numpy scalars, records and arrays
        return bytes(tobytes())
    raise MapError(errno.EINVAL, f"{what} must be bytes, a numpy value or an int, got {type(obj).__name__}",
                   map_name)


def u32(key: bytes) -> int:
    """An array index key (little-endian u32)."""
    return int.from_bytes(key[:4], "little")


def round8(size: int) -> int:
    return (size + 7) & ~7
