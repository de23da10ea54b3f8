"""The packet of a run: a frame buffer with headroom, and the region the
program reaches through its packet pointers.

Like the kernel's ``xdp_buff``/``sk_buff`` the frame is one buffer (at
``PACKET_BASE``, so an address minus ``PACKET_BASE`` is an offset into it)
with three moving marks: ``meta`` <= ``data`` <= ``end``. The program sees
exactly ``[meta, end)``: a packet pointer past ``data_end`` or into the
headroom faults, as the verifier would not have allowed it. That window is a
``Region`` of its own (a copy of those bytes); moving a mark writes the window
back into the frame and maps the new one, so bytes in the headroom and
tailroom survive a shrink and reappear on a grow, as in the kernel's buffer.
"""

from __future__ import annotations

from ..memory import PACKET_BASE, MemoryMap, Region

PACKET_REGION = "packet"


class PacketBuffer:
    """``frame``: the whole buffer; ``meta``, ``data``, ``end``: offsets of the
    metadata, the first packet byte and one past the last."""

    def __init__(self, memory: MemoryMap, frame: bytearray, meta: int, data: int, end: int,
                 hard_end: int | None = None) -> None:
        if not 0 <= meta <= data <= end <= len(frame):
            raise ValueError(f"packet marks {meta}/{data}/{end} outside a {len(frame)}-byte frame")
        self.memory = memory
        self.frame = frame
        self.meta, self.data, self.end = meta, data, end
        # How far the end may grow: the frame minus the tailroom the kernel reserves.
        self.hard_end = len(frame) if hard_end is None else hard_end
        self.region: Region | None = None
        self._map()

    @classmethod
    def build(cls, memory: MemoryMap, packet: bytes, *, meta: bytes = b"", headroom: int, frame_size: int,
              tailroom: int = 0, head: bytes = b"") -> "PacketBuffer":
        """A frame of ``frame_size`` zero bytes with ``packet`` at ``headroom``,
        ``meta`` right before it, and ``head`` (bytes the program cannot see,
        such as a pulled Ethernet header) right before that; the last
        ``tailroom`` bytes are reserved."""
        size = max(frame_size, headroom + len(packet) + tailroom)
        frame = bytearray(size)
        data = headroom
        frame[data:data + len(packet)] = packet
        frame[data - len(meta):data] = meta
        start = data - len(meta)
        frame[start - len(head):start] = head
        return cls(memory, frame, start, data, data + len(packet), size - tailroom)

    # -- addresses the context hands out ----------------------------------------------
    @property
    def data_address(self) -> int:
        return PACKET_BASE + self.data

    @property
    def end_address(self) -> int:
        return PACKET_BASE + self.end

    @property
    def meta_address(self) -> int:
        return PACKET_BASE + self.meta

    def __len__(self) -> int:
        return self.end - self.data

    # -- contents ---------------------------------------------------------------
    def sync(self) -> None:
        """Write the program's view back into the frame."""
        if self.region is not None:
            self.frame[self.meta:self.end] = self.region.data

    def view(self) -> bytearray:
        """The live bytes ``[meta, end)`` the program sees, to read and write in
        place (helpers); ``data`` is at ``view_offset`` in it."""
        assert self.region is not None
        return self.region.data

    @property
    def view_offset(self) -> int:
        """Where ``data`` lies in ``view()``."""
        return self.data - self.meta

    def packet_bytes(self) -> bytes:
        self.sync()
        return bytes(self.frame[self.data:self.end])

    def meta_bytes(self) -> bytes:
        self.sync()
        return bytes(self.frame[self.meta:self.data])

    def head_bytes(self, size: int) -> bytes:
        """The ``size`` frame bytes in front of the metadata."""
        self.sync()
        return bytes(self.frame[self.meta - size:self.meta])

    # -- moving the marks (xdp_adjust_head/meta/tail) ----------------------------------
    def move(self, *, meta: int | None = None, data: int | None = None, end: int | None = None) -> None:
        """Move marks, keeping the bytes the program wrote."""
        self.sync()
        self.set_marks(meta=meta, data=data, end=end)

    def set_marks(self, *, meta: int | None = None, data: int | None = None, end: int | None = None) -> None:
        """Move marks and map the new window from ``frame`` as it is (call
        ``sync`` first, then change ``frame``, then this)."""
        self.meta = self.meta if meta is None else meta
        self.data = self.data if data is None else data
        self.end = self.end if end is None else end
        self._map()

    def _map(self) -> None:
        if self.region is not None:
            self.memory.remove_region(self.region)
        self.region = self.memory.add(Region(PACKET_REGION, PACKET_BASE + self.meta,
                                             bytearray(self.frame[self.meta:self.end])))
