"""``ringbuf``: the BPF ring buffer, with a Python consumer.

``max_entries`` is the data area's size in bytes (a power of 2 and a multiple
of the page size). Records are laid out as in the kernel: an 8-byte header
(u32 ``len`` whose bit 31 marks a record still being written and bit 30 a
discarded one, u32 page offset) followed by the data, the whole rounded up to
8 bytes; positions grow without bound and are taken modulo the size.

The kernel maps the data pages twice in a row so a record that wraps around
the end is still contiguous; we map a region of twice the size and keep the
second half a copy of the first (headers are written to both, a record's
bytes are copied across when it is committed), so a program writes a
wrapping record through one contiguous pointer as it would in the kernel.

Kernel semantics: ``reserve`` fails (0) for a size above 2**30 - 1, a record
larger than the ring, or when the producer would get a full ring ahead of the
consumer or of the oldest record not yet committed; ``output`` is reserve +
copy + submit (-EAGAIN when full, -EINVAL for flags other than the wakeup
bits); ``query`` reports available data, ring size, consumer and producer
positions. The consumer (``consume``/``events``) hands out committed records
in reservation order and, like libbpf's, stops at the first record still
being written; discarded records are skipped.
"""

from __future__ import annotations

import errno
import struct
from typing import Any, Iterator, Sequence

from .base import PAGE_SIZE, VALUES_OFFSET, BpfMap, RegionSpec
from .flags import (BPF_F_NUMA_NODE, BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP,
                    BPF_RB_PROD_POS, BPF_RB_RING_SIZE, BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT,
                    BPF_RINGBUF_HDR_SZ)

_HEADER = struct.Struct("<II")
RINGBUF_MAX_RECORD_SZ = 0xFFFF_FFFF // 4
# Pages in front of the data in the kernel's struct bpf_ringbuf (the struct's
# own page, then the consumer and producer position pages): the header's
# page offset counts from the struct, so it starts at 3.
RINGBUF_DATA_PGOFF = 3


def _record_len(size: int) -> int:
    return (size + BPF_RINGBUF_HDR_SZ + 7) & ~7


class RingBufMap(BpfMap):
    map_type = "ringbuf"

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        super().__init__(definition, num_cpus=num_cpus)
        size = self.max_entries
        if self.key_size or self.value_size or size < PAGE_SIZE or size & (size - 1):
            raise self.error(errno.EINVAL, f"a ringbuf needs key_size 0, value_size 0 and max_entries a power "
                                           f"of 2 and a multiple of {PAGE_SIZE} (got {size})")
        self.check_create_flags(BPF_F_NUMA_NODE)
        self.size = size
        self.mask = size - 1
        self.data = self.allocate(2 * size)
        self.consumer_pos = 0
        self.producer_pos = 0
        self.pending_pos = 0  # oldest record that may still be uncommitted
        self.wakeups = 0  # notifications the kernel would have sent to a waiting consumer
        self._reserved: dict[int, int] = {}  # offset in the ring -> position, of records being written

    def regions(self) -> Sequence[RegionSpec]:
        return (RegionSpec(" data", VALUES_OFFSET, self.data),)

    # -- headers, kept in both halves -------------------------------------------------------
    def _header(self, pos: int) -> tuple[int, int]:
        return _HEADER.unpack_from(self.data, pos & self.mask)

    def _set_header(self, pos: int, length: int, pg_off: int) -> None:
        at = pos & self.mask
        _HEADER.pack_into(self.data, at, length, pg_off)
        _HEADER.pack_into(self.data, at + self.size, length, pg_off)

    def _sync(self, pos: int, total: int) -> None:
        """Make both halves agree over the record at ``pos`` (``total`` bytes)."""
        start, size, data = pos & self.mask, self.size, self.data
        end = start + total
        low_end = min(end, size)
        data[start + size:low_end + size] = data[start:low_end]
        if end > size:
            data[0:end - size] = data[size:end]

    # -- producer (BPF side) -------------------------------------------------------------------
    def reserve(self, size: int) -> int:
        """bpf_ringbuf_reserve: address of a new record's data (0 when it does not fit)."""
        base = self.window_base(None)
        pos = self._reserve(size)
        if pos is None:
            return 0
        return base + VALUES_OFFSET + (pos & self.mask) + BPF_RINGBUF_HDR_SZ

    def _reserve(self, size: int) -> int | None:
        if size > RINGBUF_MAX_RECORD_SZ:
            return None
        total = _record_len(size)
        if total > self.size:
            return None
        self._advance_pending()
        new_prod = self.producer_pos + total
        if new_prod - self.consumer_pos > self.mask or new_prod - self.pending_pos > self.mask:
            return None
        pos = self.producer_pos
        self._set_header(pos, size | BPF_RINGBUF_BUSY_BIT, RINGBUF_DATA_PGOFF + ((pos & self.mask) >> 12))
        self.producer_pos = new_prod
        self._reserved[pos & self.mask] = pos
        return pos

    def _advance_pending(self) -> None:
        pos = self.pending_pos
        while pos < self.producer_pos:  # bounded: each step passes at least 8 bytes
            length, _ = self._header(pos)
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            pos += _record_len(length & ~BPF_RINGBUF_DISCARD_BIT)
        self.pending_pos = pos

    def record_position(self, address: int) -> int | None:
        """The producer position of the record whose data starts at
        ``address``, if it is a record of this ring still being written."""
        if self.handle is None:
            return None
        return self._reserved.get(address - self.handle - VALUES_OFFSET - BPF_RINGBUF_HDR_SZ)

    def owns(self, address: int) -> bool:
        """Whether ``address`` lies in this ring's data region (as bound)."""
        if self.handle is None:
            return False
        return 0 <= address - self.handle - VALUES_OFFSET < 2 * self.size

    def submit(self, address: int, flags: int = 0) -> bool:
        """bpf_ringbuf_submit; False if ``address`` is not a record of this
        ring being written (no verified program can do that)."""
        return self._commit_address(address, flags, discard=False)

    def discard(self, address: int, flags: int = 0) -> bool:
        """bpf_ringbuf_discard; False as for ``submit``."""
        return self._commit_address(address, flags, discard=True)

    def _commit_address(self, address: int, flags: int, discard: bool) -> bool:
        pos = self.record_position(address)
        if pos is None:
            return False
        self._commit(pos, flags, discard)
        return True

    def _commit(self, pos: int, flags: int, discard: bool) -> None:
        del self._reserved[pos & self.mask]
        length, pg_off = self._header(pos)
        length ^= BPF_RINGBUF_BUSY_BIT
        self._sync(pos, _record_len(length))
        if discard:
            length |= BPF_RINGBUF_DISCARD_BIT
        self._set_header(pos, length, pg_off)
        if flags & BPF_RB_FORCE_WAKEUP or (pos == self.consumer_pos and not flags & BPF_RB_NO_WAKEUP):
            self.wakeups += 1

    def output(self, data: bytes, flags: int = 0) -> int:
        """bpf_ringbuf_output: 0, -EINVAL (flags) or -EAGAIN (no room)."""
        if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
            return -errno.EINVAL
        pos = self._reserve(len(data))
        if pos is None:
            return -errno.EAGAIN
        start = (pos & self.mask) + BPF_RINGBUF_HDR_SZ
        self.data[start:start + len(data)] = data
        self._commit(pos, flags, discard=False)
        return 0

    def query(self, flags: int) -> int:
        """bpf_ringbuf_query (0 for an unknown selector)."""
        if flags == BPF_RB_AVAIL_DATA:
            return self.producer_pos - self.consumer_pos
        if flags == BPF_RB_RING_SIZE:
            return self.size
        if flags == BPF_RB_CONS_POS:
            return self.consumer_pos
        if flags == BPF_RB_PROD_POS:
            return self.producer_pos
        return 0

    # -- consumer (Python side) ------------------------------------------------------------------
    def consume(self, limit: int | None = None) -> list[bytes]:
        """Committed records in order (at most ``limit``), removing them from
        the ring; stops at a record still being written."""
        out: list[bytes] = []
        pos = self.consumer_pos
        while pos < self.producer_pos and (limit is None or len(out) < limit):
            length, _ = self._header(pos)
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            size = length & ~BPF_RINGBUF_DISCARD_BIT
            if not length & BPF_RINGBUF_DISCARD_BIT:
                start = (pos & self.mask) + BPF_RINGBUF_HDR_SZ
                out.append(bytes(self.data[start:start + size]))
            pos += _record_len(size)
        self.consumer_pos = pos
        return out

    def events(self) -> Iterator[bytes]:
        """Iterate over (and consume) the committed records."""
        return iter(self.consume())

    def available(self) -> int:
        return self.producer_pos - self.consumer_pos

    def __len__(self) -> int:
        """Records committed and not yet consumed (discarded ones excluded)."""
        count, pos = 0, self.consumer_pos
        while pos < self.producer_pos:
            length, _ = self._header(pos)
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            count += not length & BPF_RINGBUF_DISCARD_BIT
            pos += _record_len(length & ~BPF_RINGBUF_DISCARD_BIT)
        return count
