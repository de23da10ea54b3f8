"""perf_event_array: slots open on CPUs and the captured samples, with the
kernel's errors for outputs to a missing, empty or foreign-CPU slot."""

from __future__ import annotations

import errno

import pytest

from ebpfvm.maps import MapDefinition, MapError, PerfEvent, PerfEventArrayMap, create_map


def events(max_entries: int = 0, num_cpus: int = 2) -> PerfEventArrayMap:
    bpf_map = create_map(MapDefinition("events", "perf_event_array", 4, 4, max_entries), num_cpus=num_cpus)
    assert isinstance(bpf_map, PerfEventArrayMap)
    return bpf_map


def test_default_slots_are_one_per_cpu() -> None:
    pe = events()
    assert pe.max_entries == 2  # 0 means one per CPU, as libbpf sets it
    assert pe.lookup(0) == (0).to_bytes(4, "little") and pe.lookup(1) == (1).to_bytes(4, "little")
    wide = events(max_entries=4)
    assert wide.keys() == [(0).to_bytes(4, "little"), (1).to_bytes(4, "little")]  # only CPUs 0 and 1 exist


def test_output_rules() -> None:
    pe = events(max_entries=4)
    assert pe.output(1, b"on cpu 1", cpu=1) == 0
    assert pe.output(1, b"wrong cpu", cpu=0) == -errno.EOPNOTSUPP
    assert pe.output(3, b"empty slot", cpu=1) == -errno.ENOENT
    assert pe.output(4, b"past the end", cpu=1) == -errno.E2BIG
    pe.open(3, cpu=0)
    assert pe.output(3, b"slot 3 on cpu 0", cpu=0) == 0
    assert pe.events == [PerfEvent(1, b"on cpu 1"), PerfEvent(0, b"slot 3 on cpu 0")]
    assert pe.consume() == [PerfEvent(1, b"on cpu 1"), PerfEvent(0, b"slot 3 on cpu 0")]
    assert pe.events == []


def test_python_side_slot_management() -> None:
    pe = events(max_entries=3)
    pe.update(2, 1)  # open slot 2 on CPU 1
    assert pe.lookup(2) == (1).to_bytes(4, "little")
    pe.delete(2)
    assert pe.lookup(2) is None
    with pytest.raises(MapError) as info:
        pe.delete(2)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(MapError) as info:
        pe.open(3)
    assert info.value.errno == errno.E2BIG
    with pytest.raises(MapError) as info:
        pe.update(0, 0, 1)
    assert info.value.errno == errno.EINVAL
