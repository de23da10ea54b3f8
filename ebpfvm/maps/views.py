"""numpy views of map storage.

A view aliases the map's ``bytearray``: writing through it changes the map
(and what a running program reads), and it sees the program's stores. Values
sit ``stride`` bytes apart (8-byte aligned, as in the kernel), so a view is
strided when the value size is not a multiple of 8; ``dtype`` may be any
numpy dtype whose size divides the value size (a structured dtype matching
the C struct is the usual choice). numpy is imported on first use so that
``import ebpfvm`` stays cheap.
"""

from __future__ import annotations

import errno
from typing import Any

from .errors import MapError


def value_view(buf: bytearray, outer: tuple[tuple[int, int], ...], value_size: int, dtype: Any = None,
               map_name: str = "") -> Any:
    """An ndarray over ``buf`` with the leading dimensions ``outer`` (pairs of
    (length, stride in bytes)) followed by one value: ``value_size`` uint8
    without ``dtype``; with it one element when its size equals the value's,
    else ``value_size // itemsize`` elements."""
    import numpy as np

    shape = [n for n, _ in outer]
    strides = [s for _, s in outer]
    if dtype is None:
        dt = np.dtype(np.uint8)
        shape.append(value_size)
        strides.append(1)
    else:
        dt = np.dtype(dtype)
        if dt.itemsize == 0 or value_size % dt.itemsize:
            raise MapError(errno.EINVAL, f"dtype {dt} ({dt.itemsize} bytes) does not divide the "
                                         f"{value_size}-byte value", map_name)
        if dt.itemsize != value_size:
            shape.append(value_size // dt.itemsize)
            strides.append(dt.itemsize)
    if any(n == 0 for n in shape):
        return np.zeros(shape, dtype=dt)
    return np.ndarray(tuple(shape), dtype=dt, buffer=buf, offset=0, strides=tuple(strides))


def records(chunks: list[bytes], size: int, dtype: Any = None) -> Any:
    """A fresh (copied) array of equally sized byte strings: shape (n, size)
    uint8, or (n,) / (n, k) of ``dtype``."""
    import numpy as np

    flat = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(len(chunks), size).copy()
    if dtype is None:
        return flat
    dt = np.dtype(dtype)
    if dt.itemsize == 0 or size % dt.itemsize:
        raise MapError(errno.EINVAL, f"dtype {dt} ({dt.itemsize} bytes) does not divide the {size}-byte items")
    out = flat.view(dt)
    return out.reshape(len(chunks)) if dt.itemsize == size else out
