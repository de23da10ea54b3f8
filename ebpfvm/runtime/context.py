"""The context region: every load and store a program makes through its
context pointer is checked against the program type's layout and rewritten
as the kernel's ``convert_ctx_access`` would.

The region's bytes hold the context struct. A load of an allowed field reads
those bytes, except for the packet pointers: the kernel turns the 32-bit load
of ``data``/``data_end``/``data_meta`` into a load of the 64-bit pointer, so
the hook returns the packet's current address. A disallowed access raises
``ContextAccessError`` naming the field. Results are cached per (offset, size)
so a program that reads the same fields in a loop pays the check once.
"""

from __future__ import annotations

import struct
from typing import Callable

from ..memory import MEM_BASE, Region
from ..progtypes.base import ContextLayout, CtxField, FieldKind
from .packet import PacketBuffer

CTX_REGION = "ctx"
CTX_BASE = MEM_BASE
CTX_WINDOW = 4096  # bytes of address space the context region spans (the struct, then nothing accessible)

_UNPACK = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}
_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF, 8: 0xFFFF_FFFF_FFFF_FFFF}


class ContextRegion(Region):
    """A region whose loads and stores go through ``hook``."""

    __slots__ = ("hook",)

    def __init__(self, name: str, base: int, data: bytearray, hook: "ContextAccess") -> None:
        # Not writable for atomics and helpers; stores of the program go through the hook.
        super().__init__(name, base, data, writable=False)
        self.hook = hook


class ContextAccess:
    """The hook of a context region: ``layout`` decides, ``packet`` (if any)
    supplies the pointers."""

    def __init__(self, layout: ContextLayout, data: bytearray, packet: PacketBuffer | None) -> None:
        self.layout = layout
        self.data = data
        self.packet = packet
        self._reads: dict[tuple[int, int], Callable[[], int]] = {}
        self._writes: dict[tuple[int, int], CtxField] = {}

    def read(self, offset: int, size: int, pc: int) -> int:
        reader = self._reads.get((offset, size))
        if reader is None:
            reader = self._reader(self.layout.check(offset, size, False, pc), offset, size)
            self._reads[(offset, size)] = reader
        return reader()

    def write(self, offset: int, size: int, value: int, pc: int) -> None:
        if (offset, size) not in self._writes:
            self._writes[(offset, size)] = self.layout.check(offset, size, True, pc)
        _UNPACK[size].pack_into(self.data, offset, value & _MASK[size])

    def _reader(self, field: CtxField, offset: int, size: int) -> Callable[[], int]:
        kind = field.kind
        if kind is FieldKind.VALUE:
            unpack, data = _UNPACK[size].unpack_from, self.data
            return lambda: unpack(data, offset)[0]
        if kind is FieldKind.SOCKET:
            return lambda: 0
        packet = self.packet
        if packet is None:  # a packet pointer with no packet: NULL, which any access faults on
            return lambda: 0
        if kind is FieldKind.PACKET:
            return lambda: packet.data_address
        if kind is FieldKind.PACKET_END:
            return lambda: packet.end_address
        return lambda: packet.meta_address

    def snapshot(self) -> bytes:
        """The context at the end of a run; packet pointer fields hold offsets
        from ``data_meta``, as the kernel's test run reports an ``xdp_md``."""
        out = bytearray(self.data[:self.layout.size])
        packet = self.packet
        for field in self.layout.fields:
            if packet is None or field.kind not in _POINTER_OFFSET:
                continue
            value = _POINTER_OFFSET[field.kind](packet)
            out[field.offset:field.offset + 4] = value.to_bytes(4, "little")
        return bytes(out)


_POINTER_OFFSET: dict[FieldKind, Callable[[PacketBuffer], int]] = {
    FieldKind.PACKET: lambda p: p.data - p.meta,
    FieldKind.PACKET_END: lambda p: p.end - p.meta,
    FieldKind.PACKET_META: lambda p: 0,
}
