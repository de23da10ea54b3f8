"""ringbuf: record layout, reservation rules, wrap-around, the consumer and
query, worked out from kernel/bpf/ringbuf.c (headers: u32 len with bit 31
busy and bit 30 discard, u32 page offset; records 8-byte aligned)."""

from __future__ import annotations

import errno
import struct

import pytest

from ebpfvm.memory import MemoryMap, map_window
from ebpfvm.maps import (BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP,
                         BPF_RB_PROD_POS, BPF_RB_RING_SIZE, VALUES_OFFSET, MapDefinition, MapError, RingBufMap,
                         create_map)

SIZE = 4096


def ring(size: int = SIZE) -> tuple[RingBufMap, MemoryMap]:
    rb = create_map(MapDefinition("events", "ringbuf", 0, 0, size))
    assert isinstance(rb, RingBufMap)
    memory = MemoryMap()
    rb.bind(memory, map_window(0))
    return rb, memory


def data_start(rb: RingBufMap) -> int:
    return map_window(0) + VALUES_OFFSET


def test_reserve_lays_out_headers_and_aligned_records() -> None:
    rb, memory = ring()
    first = rb.reserve(5)
    second = rb.reserve(8)
    assert first == data_start(rb) + 8  # after the 8-byte header
    assert second == first + 16  # 8 header + 5 data rounded up to 8 -> 16
    length, pg_off = struct.unpack_from("<II", rb.data, 0)
    assert length == 5 | 1 << 31 and pg_off == 3  # busy; page 3 of struct bpf_ringbuf
    assert rb.query(BPF_RB_PROD_POS) == 32 and rb.query(BPF_RB_AVAIL_DATA) == 32
    memory.write_bytes(first, b"hello")
    memory.write_bytes(second, b"8 bytes!")
    assert rb.consume() == []  # the first record is still being written
    assert rb.submit(second)
    assert rb.consume() == []  # ... and blocks the one after it
    assert rb.submit(first)
    assert rb.consume() == [b"hello", b"8 bytes!"]
    assert rb.query(BPF_RB_CONS_POS) == 32 and rb.query(BPF_RB_AVAIL_DATA) == 0
    assert rb.query(BPF_RB_RING_SIZE) == SIZE and rb.query(99) == 0


def test_discarded_records_are_skipped_and_double_commit_refused() -> None:
    rb, memory = ring()
    a, b = rb.reserve(4), rb.reserve(4)
    assert rb.discard(a)
    assert not rb.discard(a) and not rb.submit(a)  # no longer being written
    assert not rb.submit(a + 8)  # not the start of a record
    memory.write_bytes(b, b"keep")
    rb.submit(b)
    assert len(rb) == 1
    assert list(rb.events()) == [b"keep"]
    assert len(rb) == 0


def test_space_runs_out_and_comes_back_after_consuming() -> None:
    rb, _ = ring()
    assert rb.reserve(SIZE) == 0  # record larger than the ring
    assert rb.reserve(1 << 30) == 0
    big = SIZE // 2 - 8  # a record of exactly half the ring
    a = rb.reserve(big)
    assert a
    assert rb.reserve(big) == 0  # would put the producer a whole ring ahead
    assert rb.reserve(big - 8)  # fits: SIZE - 8 ahead
    assert rb.reserve(0) == 0
    rb.submit(a)
    assert rb.consume() == [bytes(big)]  # stops at the second record, still being written
    assert rb.reserve(big - 8)  # the first record's space is free again
    assert rb.reserve(8) == 0
    assert rb.output(b"x") == -errno.EAGAIN


def test_records_wrap_around_contiguously() -> None:
    rb, memory = ring()
    rb.output(b"A" * (SIZE - 64 - 8))  # the next record starts 64 bytes before the end
    rb.consume()
    address = rb.reserve(200)
    assert address == data_start(rb) + SIZE - 64 + 8
    payload = bytes(range(200))
    memory.write_bytes(address, payload)  # one contiguous write across the end
    rb.submit(address)
    assert rb.consume() == [payload]
    assert rb.data[:SIZE] == rb.data[SIZE:]  # both halves agree again
    assert rb.output(b"after") == 0 and rb.consume() == [b"after"]


def test_output_and_wakeup_flags() -> None:
    rb, _ = ring()
    assert rb.output(b"abc", 4) == -errno.EINVAL
    assert rb.output(b"abc", BPF_RB_NO_WAKEUP) == 0
    assert rb.wakeups == 0
    assert rb.output(b"def") == 0  # not at the consumer position: no wakeup either
    assert rb.output(b"ghi", BPF_RB_FORCE_WAKEUP) == 0
    assert rb.wakeups == 1
    assert rb.consume(limit=2) == [b"abc", b"def"]
    assert rb.output(b"jkl") == 0
    assert rb.consume() == [b"ghi", b"jkl"]


@pytest.mark.parametrize("key_size, value_size, max_entries", [(4, 0, SIZE), (0, 4, SIZE), (0, 0, 3 * SIZE),
                                                               (0, 0, 1024)])
def test_creation_checks(key_size: int, value_size: int, max_entries: int) -> None:
    with pytest.raises(MapError) as info:
        create_map(MapDefinition("rb", "ringbuf", key_size, value_size, max_entries))
    assert info.value.errno == errno.EINVAL


def test_element_operations_are_not_supported() -> None:
    rb, _ = ring()
    with pytest.raises(MapError):
        rb.lookup(b"")
    with pytest.raises(MapError):
        rb.update(b"", b"")
