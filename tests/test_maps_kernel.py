"""Our maps against the kernel's: the same generated sequence of operations
(update/lookup/delete, push/pop/peek, with every flag combination, including
invalid ones) applied through our Python API and through bpf(2) on a real
map must give the same results, the same errnos and the same final contents.

Kernel maps are created per example; per-CPU values use the machine's
possible-CPU count so both sides have the same layout. LRU eviction is
approximate in the kernel, so the LRU sequence never lets the map fill up,
and the process is pinned to one CPU so that the kernel's per-CPU free lists
cannot run dry early (see ebpfvm/maps/hash.py).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.kernel import KernelError, create_map as kernel_create_map
from ebpfvm.kernel.maps import possible_cpus
from ebpfvm.maps import BPF_F_NO_PREALLOC, MapDefinition, MapError, create_map

try:
    from kernel_support import require_kernel
except ImportError:  # pragma: no cover
    from tests.kernel_support import require_kernel

# Per map family: about 100 in all (many more under the deep profile).
EXAMPLES = 1000 if os.environ.get("EBPFVM_HYPOTHESIS_PROFILE") == "deep" else 15
FLAGS = st.sampled_from([0, 1, 2, 3, 4])  # ANY, NOEXIST, EXIST, invalid, F_LOCK (no spin lock: invalid)

Result = tuple[str, Any]


def ours(call: Callable[[], Any]) -> Result:
    try:
        return ("ok", call())
    except MapError as e:
        return ("err", e.errno)


def theirs(call: Callable[[], Any]) -> Result:
    try:
        return ("ok", call())
    except KernelError as e:
        return ("err", e.errno)


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


@contextmanager
def pinned() -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def our_delete(bpf_map: Any, key: bytes) -> Result:
    """Our delete as KernelMap.delete reports it: True, False for ENOENT."""
    result = ours(lambda: bpf_map.delete(key))
    if result == ("err", 2):
        return ("ok", False)
    return ("ok", True) if result[0] == "ok" else result


def run_keyed(defn: MapDefinition, ops: list[tuple], normalize: Callable[[Any], Any] = lambda v: v) -> None:
    """Apply ``ops`` (("update", key, value, flags) / ("lookup", key) /
    ("delete", key)) to both maps, comparing as we go and at the end."""
    require_kernel()
    mine = create_map(defn, num_cpus=possible_cpus())
    with kernel_create_map(defn.map_type, defn.key_size, defn.value_size, defn.max_entries, defn.flags) as kmap:
        for step, op in enumerate(ops):
            if op[0] == "update":
                _, key, value, flags = op
                got = ours(lambda: mine.update(key, value, flags))
                want = theirs(lambda: kmap.update(key, value, flags))
            elif op[0] == "lookup":
                got = ours(lambda: normalize(mine.lookup(op[1])))
                want = theirs(lambda: kmap.lookup(op[1]))
                want = (want[0], normalize(want[1])) if want[0] == "ok" else want
            else:
                got = our_delete(mine, op[1])
                want = theirs(lambda: kmap.delete(op[1]))
            assert got == want, f"step {step} {op}: ours {got}, kernel {want}"
        final = {k: normalize(v) for k, v in kmap.dump().items()}
        assert {k: normalize(v) for k, v in mine.items()} == final


def keyed_ops(keys: st.SearchStrategy, values: st.SearchStrategy, max_size: int = 20) -> st.SearchStrategy:
    update = st.tuples(st.just("update"), keys, values, FLAGS)
    lookup = st.tuples(st.just("lookup"), keys)
    delete = st.tuples(st.just("delete"), keys)
    return st.lists(st.one_of(update, update, lookup, delete), max_size=max_size)


SMALL_KEYS = st.integers(0, 5).map(u32)
U64_VALUES = st.integers(0, 2**64 - 1).map(lambda n: n.to_bytes(8, "little"))


@settings(max_examples=EXAMPLES)
@given(keyed_ops(SMALL_KEYS, U64_VALUES))
def test_hash_matches_kernel(ops: list[tuple]) -> None:
    run_keyed(MapDefinition("h", "hash", 4, 8, 4), ops)


@settings(max_examples=EXAMPLES)
@given(keyed_ops(SMALL_KEYS, st.binary(min_size=12, max_size=12)))
def test_array_matches_kernel(ops: list[tuple]) -> None:
    # 12-byte values: stored 16 bytes apart, as the kernel does
    run_keyed(MapDefinition("a", "array", 4, 12, 4), ops)


def _percpu_value(n: int) -> bytes:
    stride = 8
    return b"".join(((n + cpu) & 0xFFFF_FFFF).to_bytes(4, "little").ljust(stride, b"\0")
                    for cpu in range(possible_cpus()))


def _per_cpu_view(value: Any) -> Any:
    """Kernel per-CPU bytes or our list, as a tuple of value_size slices."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(value)
    return tuple(value[i:i + 4] for i in range(0, len(value), 8))


@settings(max_examples=EXAMPLES)
@given(keyed_ops(SMALL_KEYS, st.integers(0, 2**32 - 1).map(_percpu_value)))
def test_percpu_array_matches_kernel(ops: list[tuple]) -> None:
    run_keyed(MapDefinition("p", "percpu_array", 4, 4, 4), ops, _per_cpu_view)


@settings(max_examples=EXAMPLES)
@given(keyed_ops(st.integers(0, 11).map(u32), U64_VALUES, max_size=30))
def test_lru_hash_matches_kernel_while_not_full(ops: list[tuple]) -> None:
    capacity = 16
    live: set[bytes] = set()
    kept = []
    for op in ops:  # the model of what is present, to keep the map at most half full
        if op[0] == "update":
            if len(live) >= capacity // 2:
                continue
            _, key, _, flags = op
            if flags == 0 or (flags == 1 and key not in live) or (flags == 2 and key in live):
                live.add(key)
        elif op[0] == "delete":
            live.discard(op[1])
        kept.append(op)
    with pinned():
        run_keyed(MapDefinition("l", "lru_hash", 4, 8, capacity), kept)


def _lpm_key(prefixlen: int, data: bytes) -> bytes:
    return u32(prefixlen) + data


LPM_KEYS = st.builds(_lpm_key, st.integers(0, 17),
                     st.tuples(st.sampled_from([0x00, 0x80, 0xC0, 0xC8, 0xFF]),
                               st.sampled_from([0x00, 0x01, 0xF0])).map(bytes))


@settings(max_examples=EXAMPLES)
@given(keyed_ops(LPM_KEYS, st.binary(min_size=4, max_size=4)))
def test_lpm_trie_matches_kernel(ops: list[tuple]) -> None:
    # data of 2 bytes: max prefixlen 16, so 17 is invalid
    run_keyed(MapDefinition("t", "lpm_trie", 6, 4, 4, flags=BPF_F_NO_PREALLOC), ops)


QUEUE_OPS = st.lists(st.one_of(
    st.tuples(st.just("push"), st.binary(min_size=4, max_size=4), FLAGS),
    st.tuples(st.just("pop")),
    st.tuples(st.just("peek")),
), max_size=20)


def run_queue(map_type: str, ops: list[tuple]) -> None:
    require_kernel()
    mine = create_map(MapDefinition("q", map_type, 0, 4, 3))
    with kernel_create_map(map_type, 0, 4, 3) as kmap:
        for step, op in enumerate(ops):
            if op[0] == "push":
                got = ours(lambda: mine.push(op[1], op[2]))
                want = theirs(lambda: kmap.update(b"", op[1], op[2]))
            elif op[0] == "pop":
                got, want = ours(mine.pop), theirs(lambda: kmap.lookup_and_delete(b""))
            else:
                got, want = ours(mine.peek), theirs(lambda: kmap.lookup(b""))
            assert got == want, f"step {step} {op}: ours {got}, kernel {want}"
        assert ours(lambda: mine.delete(b"")) == theirs(lambda: kmap.delete(b""))
        remaining = [kmap.lookup_and_delete(b"") for _ in range(4)]
        assert mine.values() + [None] * (4 - len(mine)) == remaining


@settings(max_examples=EXAMPLES)
@given(QUEUE_OPS)
def test_queue_matches_kernel(ops: list[tuple]) -> None:
    run_queue("queue", ops)


@settings(max_examples=EXAMPLES)
@given(QUEUE_OPS)
def test_stack_matches_kernel(ops: list[tuple]) -> None:
    run_queue("stack", ops)


@pytest.mark.parametrize("map_type, key_size, value_size, max_entries, flags", [
    ("array", 8, 4, 4, 0),            # arrays take u32 keys
    ("hash", 0, 4, 4, 0),             # no key
    ("hash", 4, 4, 0, 0),             # no entries
    ("lru_hash", 4, 4, 4, BPF_F_NO_PREALLOC),
    ("lpm_trie", 6, 4, 4, 0),         # lpm_trie needs BPF_F_NO_PREALLOC
    ("lpm_trie", 4, 4, 4, BPF_F_NO_PREALLOC),  # no data bytes
    ("queue", 4, 4, 4, 0),            # queues have no key
    ("ringbuf", 0, 0, 4096 * 3, 0),   # not a power of 2
    ("ringbuf", 0, 0, 2048, 0),       # less than a page
    ("perf_event_array", 4, 8, 4, 0),  # value is an fd
])
def test_create_errors_match_kernel(map_type: str, key_size: int, value_size: int, max_entries: int,
                                    flags: int) -> None:
    require_kernel()
    with pytest.raises(KernelError) as kernel_error:
        kernel_create_map(map_type, key_size, value_size, max_entries, flags).close()
    with pytest.raises(MapError) as our_error:
        create_map(MapDefinition("x", map_type, key_size, value_size, max_entries, flags=flags))
    assert our_error.value.errno == kernel_error.value.errno
