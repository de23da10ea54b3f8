"""queue and stack maps: order, capacity, BPF_EXIST overwriting and the
BPF-side pop/peek results (worked out from queue_stack_maps.c; the kernel
checks the Python API in test_maps_kernel.py)."""

from __future__ import annotations

import errno

import pytest

from ebpfvm.maps import BPF_EXIST, BPF_NOEXIST, MapDefinition, MapError, QueueMap, StackMap, create_map


def make(map_type: str, max_entries: int = 3) -> QueueMap:
    bpf_map = create_map(MapDefinition("q", map_type, 0, 2, max_entries))
    assert isinstance(bpf_map, QueueMap)
    return bpf_map


def errno_of(call: object) -> int:
    with pytest.raises(MapError) as info:
        call()  # type: ignore[operator]
    return info.value.errno


def test_queue_is_fifo_and_stack_is_lifo() -> None:
    queue, stack = make("queue"), make("stack")
    assert isinstance(stack, StackMap)
    for bpf_map in (queue, stack):
        for n in (1, 2, 3):
            bpf_map.push(n)
        assert len(bpf_map) == 3
    assert queue.values() == [b"\x01\0", b"\x02\0", b"\x03\0"]
    assert stack.values() == [b"\x03\0", b"\x02\0", b"\x01\0"]
    assert queue.peek() == b"\x01\0" and stack.peek() == b"\x03\0"
    assert [queue.pop() for _ in range(4)] == [b"\x01\0", b"\x02\0", b"\x03\0", None]
    assert [stack.pop() for _ in range(4)] == [b"\x03\0", b"\x02\0", b"\x01\0", None]


@pytest.mark.parametrize("map_type, after", [("queue", [2, 3, 4]), ("stack", [4, 3, 2])])
def test_full_push_needs_bpf_exist_which_drops_the_oldest(map_type: str, after: list[int]) -> None:
    bpf_map = make(map_type)
    for n in (1, 2, 3):
        bpf_map.push(n)
    assert errno_of(lambda: bpf_map.push(4)) == errno.E2BIG
    bpf_map.push(4, BPF_EXIST)
    assert bpf_map.values() == [n.to_bytes(2, "little") for n in after]


def test_flags_and_keyed_operations() -> None:
    queue = make("queue")
    assert errno_of(lambda: queue.push(1, BPF_NOEXIST)) == errno.EINVAL
    assert errno_of(lambda: queue.push(1, 3)) == errno.EINVAL
    assert errno_of(lambda: queue.push(1, 4)) == errno.EINVAL
    queue.update(None, 5)  # bpf(2) update pushes ...
    assert queue.lookup(None) == b"\x05\0"  # ... lookup peeks ...
    assert queue.lookup_and_delete(None) == b"\x05\0"  # ... lookup_and_delete pops
    assert errno_of(lambda: queue.delete(b"")) == errno.EINVAL
    assert errno_of(lambda: queue.update(b"\0", 5)) == errno.EINVAL
    assert queue.keys() == [] and b"" not in queue


def test_bpf_side_results() -> None:
    stack = make("stack", max_entries=1)
    assert stack.pop_elem() == (-errno.ENOENT, b"\0\0")  # empty: zero-filled buffer
    assert stack.push_elem(b"ab", 0) == 0
    assert stack.push_elem(b"cd", 0) == -errno.E2BIG
    assert stack.push_elem(b"cd", BPF_EXIST) == 0
    assert stack.peek_elem() == (0, b"cd")
    assert stack.pop_elem() == (0, b"cd")
    assert stack.peek_elem() == (-errno.ENOENT, b"\0\0")
    assert stack.lookup_address(b"", cpu=0) == 0
    assert stack.update_elem(b"", b"xy", 0, cpu=0) == -errno.EINVAL
    assert stack.delete_elem(b"") == -errno.EINVAL


def test_wraps_around_many_times() -> None:
    queue = make("queue", max_entries=2)
    for n in range(50):
        queue.push(n)
        assert queue.pop() == n.to_bytes(2, "little")
    assert len(queue) == 0


@pytest.mark.parametrize("key_size, value_size, max_entries", [(4, 2, 1), (0, 0, 1), (0, 2, 0)])
def test_creation_checks(key_size: int, value_size: int, max_entries: int) -> None:
    assert errno_of(lambda: create_map(MapDefinition("q", "queue", key_size, value_size, max_entries))) \
        == errno.EINVAL
