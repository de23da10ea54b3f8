"""The sandboxed address space a program runs in: named regions with bounds.

A program only ever sees 64-bit numbers. Those that point somewhere point
into one of the regions of a ``MemoryMap``: the input memory (context), one
512-byte stack per active call frame, and later map values and packets. Every
load and store goes through ``MemoryMap.read``/``write`` and is checked against
the regions; anything else raises ``MemoryFault`` naming the nearest region.
Host memory is never touched: a region is a ``bytearray`` and an address is
only an integer.

Address layout (shared with the verifier's pointer types and the JIT's checked
mode, so that traces, logs and faults name the same numbers)::

    0x0000_0000_0000 .. 0x0fff_ffff_ffff   unmapped: NULL and small integers fault
    0x1000_0000_0000                       input memory / context ("mem")
    0x2000_0000_0000                       packet data (later issues)
    0x3000_0000_0000 ..                    map values (later issues)
    0x5000_0000_0000 + 8 * pc              code addresses of subprograms (never readable)
    0x7ff0_0000_0000 - k * 0x1_0000        stack frame k (grows down with call depth)

The bases are far apart and far from zero so that pointer arithmetic in a
program behaves as on a real machine (a pointer truncated to 32 bits faults)
and an overrun of one region cannot land in another.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from typing import Iterator

from .errors import MemoryFault

MASK64 = 0xFFFF_FFFF_FFFF_FFFF

MEM_BASE = 0x1000_0000_0000
PACKET_BASE = 0x2000_0000_0000
MAP_VALUE_BASE = 0x3000_0000_0000
CODE_BASE = 0x5000_0000_0000
STACK_TOP = 0x7FF0_0000_0000
STACK_SIZE = 512  # MAX_BPF_STACK: bytes of stack one frame may use
STACK_STRIDE = 0x1_0000  # gap between frames, so an overrun faults instead of hitting the caller

# struct formats by access size: unsigned little endian, as the ISA is on x86/arm64.
_UNPACK = [None, struct.Struct("<B").unpack_from, struct.Struct("<H").unpack_from, None,
           struct.Struct("<I").unpack_from, None, None, None, struct.Struct("<Q").unpack_from]
_PACK = [None, struct.Struct("<B").pack_into, struct.Struct("<H").pack_into, None,
         struct.Struct("<I").pack_into, None, None, None, struct.Struct("<Q").pack_into]
_SIZE_MASK = [0, 0xFF, 0xFFFF, 0, 0xFFFF_FFFF, 0, 0, 0, MASK64]


MAP_WINDOW = 1 << 32  # address space each map may lay out its values (and handle) in


def map_window(index: int) -> int:
    """Base address of the window of map ``index`` of a run: the map's handle
    (what ``lddw rX, map_fd i`` loads) is this address; its values lie inside."""
    return MAP_VALUE_BASE + index * MAP_WINDOW


def stack_frame_base(depth: int) -> int:
    """Lowest address of the stack of call frame ``depth`` (0 = main program)."""
    return STACK_TOP - (depth + 1) * STACK_STRIDE


def stack_frame_name(depth: int) -> str:
    return f"stack frame {depth}"


def code_address(pc: int) -> int:
    """The value a ``lddw rX, func`` (BPF_PSEUDO_FUNC) loads for subprogram ``pc``."""
    return CODE_BASE + 8 * pc


def code_pc(address: int) -> int | None:
    """Inverse of ``code_address``: the slot index, or None for a non-code value."""
    offset = address - CODE_BASE
    if offset < 0 or offset % 8 or offset >= 8 * 0x1000_0000:
        return None
    return offset // 8


class Region:
    """A contiguous range of addresses backed by a bytearray.

    Plain slots rather than a dataclass: the interpreter reads ``base``/``size``
    on every memory access.

    ``hook``: None for plain memory. A region whose loads and stores need
    semantics of their own (a program's context, whose fields the kernel
    rewrites) is a subclass with a ``hook`` offering ``read(offset, size, pc)``
    and ``write(offset, size, value, pc)``; ``MemoryMap.read``/``write``
    consult it only on their slow path and never cache such a region, so
    plain accesses pay nothing. Such a region is read-only to everything
    else that writes memory (atomics, helpers), as the kernel allows no
    atomic or helper store into a context.
    """

    __slots__ = ("name", "base", "data", "writable", "size", "end")
    hook = None

    def __init__(self, name: str, base: int, data: bytearray, writable: bool = True) -> None:
        if not isinstance(data, bytearray):
            raise TypeError(f"region {name!r} needs a bytearray, got {type(data).__name__}")
        if base < 0 or base + len(data) > MASK64 + 1:
            raise ValueError(f"region {name!r} at {base:#x} does not fit in the 64-bit address space")
        self.name = name
        self.base = base
        self.data = data
        self.writable = writable
        self.size = len(data)
        self.end = base + len(data)  # one past the last byte

    def contains(self, address: int, size: int = 1) -> bool:
        return self.base <= address and address + size <= self.end

    def describe(self) -> str:
        """``name [first-last]`` as faults and traces print it."""
        last = self.end - 1 if self.size else self.base
        return f"{self.name} [{self.base:#x}-{last:#x}]"

    def __repr__(self) -> str:
        mode = "rw" if self.writable else "ro"
        return f"Region({self.describe()}, {self.size} bytes, {mode})"


# Matches nothing (size 0), so the fast path needs no None check.
_NO_REGION = Region("<none>", 0, bytearray(), writable=False)


class MemoryMap:
    """The regions of one running program, with checked loads and stores.

    Lookup is optimised for the common case: the last region hit (separately
    for reads and writes) is tried first; otherwise a bisect over the sorted
    region bases finds the candidate. Regions never overlap.
    """

    def __init__(self) -> None:
        self._regions: list[Region] = []  # sorted by base
        self._bases: list[int] = []
        self._by_name: dict[str, Region] = {}
        self._last_read: Region = _NO_REGION
        self._last_write: Region = _NO_REGION

    # -- regions -----------------------------------------------------------
    def add_region(self, name: str, base: int, data: bytearray | bytes | int,
                   writable: bool = True) -> Region:
        """Map ``data`` (a bytearray, used in place; bytes, copied; or a size,
        zero-filled) at ``base`` under a unique ``name``."""
        if isinstance(data, int):
            data = bytearray(data)
        elif not isinstance(data, bytearray):
            data = bytearray(data)
        return self.add(Region(name, base, data, writable))

    def add(self, region: Region) -> Region:
        if region.name in self._by_name:
            raise ValueError(f"a region named {region.name!r} is already mapped")
        i = bisect_right(self._bases, region.base)
        before = self._regions[i - 1] if i else None
        after = self._regions[i] if i < len(self._regions) else None
        for other in (before, after):
            if other is not None and region.base < other.end and other.base < region.end:
                raise ValueError(f"region {region.describe()} overlaps {other.describe()}")
            if other is not None and region.size == 0 and other.base == region.base:
                raise ValueError(f"region {region.describe()} shares its base with {other.describe()}")
        self._regions.insert(i, region)
        self._bases.insert(i, region.base)
        self._by_name[region.name] = region
        return region

    def remove_region(self, region: Region | str) -> Region:
        """Unmap a region (by object or name); later accesses to it fault."""
        if isinstance(region, str):
            region = self._by_name[region]
        i = self._regions.index(region)
        del self._regions[i]
        del self._bases[i]
        del self._by_name[region.name]
        # A stale cache entry would keep an unmapped region reachable.
        if self._last_read is region:
            self._last_read = _NO_REGION
        if self._last_write is region:
            self._last_write = _NO_REGION
        return region

    def region(self, name: str) -> Region:
        return self._by_name[name]

    def get(self, name: str) -> Region | None:
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Region]:
        return iter(tuple(self._regions))

    def __len__(self) -> int:
        return len(self._regions)

    def find(self, address: int, size: int = 1) -> Region | None:
        """The region holding all of ``[address, address + size)``, or None."""
        i = bisect_right(self._bases, address) - 1
        if i >= 0:
            region = self._regions[i]
            if address + size <= region.end:
                return region
        return None

    def nearest(self, address: int, size: int = 1) -> Region | None:
        """The region closest to ``[address, address + size)`` (for fault messages)."""
        best, best_distance = None, None
        for region in self._regions:
            if address + size <= region.base:
                distance = region.base - (address + size) + 1
            elif address >= region.end:
                distance = address - region.end + 1
            else:
                distance = 0  # overlaps: an access that straddles the region's edge
            if best_distance is None or distance < best_distance:
                best, best_distance = region, distance
        return best

    # -- checked access ----------------------------------------------------
    def read(self, address: int, size: int, pc: int = -1) -> int:
        """Unsigned little-endian load of 1, 2, 4 or 8 bytes."""
        region = self._last_read
        offset = address - region.base
        if offset >= 0 and offset + size <= region.size:
            return _UNPACK[size](region.data, offset)[0]
        region = self.locate(address, size, False, pc)
        if region.hook is not None:
            return region.hook.read(address - region.base, size, pc)
        self._last_read = region
        return _UNPACK[size](region.data, address - region.base)[0]

    def write(self, address: int, size: int, value: int, pc: int = -1) -> None:
        """Little-endian store of the low ``size`` bytes of ``value``."""
        region = self._last_write
        offset = address - region.base
        if offset >= 0 and offset + size <= region.size:
            _PACK[size](region.data, offset, value & _SIZE_MASK[size])
            return
        region = self.find(address, size) if 0 <= address else None
        if region is not None and region.hook is not None:
            region.hook.write(address - region.base, size, value, pc)
            return
        if region is None or not region.writable:
            raise self.fault(address, size, True, pc)
        self._last_write = region
        _PACK[size](region.data, address - region.base, value & _SIZE_MASK[size])

    def read_bytes(self, address: int, size: int, pc: int = -1) -> bytes:
        """A copy of ``size`` bytes at ``address`` (for helpers)."""
        if size == 0:
            return b""
        region = self.locate(address, size, False, pc)
        offset = address - region.base
        return bytes(region.data[offset:offset + size])

    def write_bytes(self, address: int, data: bytes, pc: int = -1) -> None:
        """Store ``data`` at ``address`` (for helpers)."""
        if not data:
            return
        region = self.locate(address, len(data), True, pc)
        offset = address - region.base
        region.data[offset:offset + len(data)] = data

    def locate(self, address: int, size: int, write: bool, pc: int = -1) -> Region:
        """The region an access of ``size`` bytes at ``address`` may use, or
        raise ``MemoryFault`` (also for a write to a read-only region)."""
        region = self.find(address, size) if 0 <= address else None
        if region is None or (write and not region.writable):
            raise self.fault(address, size, write, pc)
        return region

    def fault(self, address: int, size: int, write: bool, pc: int) -> MemoryFault:
        """The ``MemoryFault`` for a bad access (address reported modulo 2**64)."""
        address &= MASK64
        inside = self.find(address, size)
        if inside is not None:  # only reached for a write to a read-only region
            nearest = f"{inside.describe()} (read-only)"
        else:
            region = self.nearest(address, size)
            nearest = region.describe() if region is not None else None
        return MemoryFault(pc, address, size, write, nearest)
