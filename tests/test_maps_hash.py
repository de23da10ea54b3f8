"""Hash maps: hash, percpu_hash, lru_hash, lru_percpu_hash.

The element algebra is checked against a dict model (hypothesis); the
preallocated-slot behaviour (pointers stay valid, a replaced value keeps its
old memory), per-CPU initialisation and our exact LRU policy by hand. The
kernel checks the Python API in test_maps_kernel.py.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.errors import MemoryFault
from ebpfvm.memory import MemoryMap, map_window
from ebpfvm.maps import (BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_F_NO_PREALLOC, BPF_NOEXIST, ENOTSUPP, HashMap,
                         MapDefinition, MapError, create_map)


def make(map_type: str = "hash", key_size: int = 4, value_size: int = 8, max_entries: int = 3,
         num_cpus: int = 2, **kw: object) -> HashMap:
    bpf_map = create_map(MapDefinition("h", map_type, key_size, value_size, max_entries, **kw),  # type: ignore[arg-type]
                         num_cpus=num_cpus)
    assert isinstance(bpf_map, HashMap)
    return bpf_map


def k(n: int) -> bytes:
    return n.to_bytes(4, "little")


def v(n: int) -> bytes:
    return n.to_bytes(8, "little")


def errno_of(call: object) -> int:
    with pytest.raises(MapError) as info:
        call()  # type: ignore[operator]
    return info.value.errno


def test_basic_element_operations() -> None:
    h = make()
    assert h.lookup(1) is None and len(h) == 0
    h.update(1, v(10))
    h.update(2, v(20), BPF_NOEXIST)
    h.update(1, v(11), BPF_EXIST)
    assert h.lookup(1) == v(11) and h.lookup(k(2)) == v(20)
    assert errno_of(lambda: h.update(2, v(0), BPF_NOEXIST)) == errno.EEXIST
    assert errno_of(lambda: h.update(5, v(0), BPF_EXIST)) == errno.ENOENT
    assert errno_of(lambda: h.update(5, v(0), 3)) == errno.EINVAL
    assert errno_of(lambda: h.update(5, v(0), BPF_F_LOCK)) == errno.EINVAL
    h.update(3, v(30))
    assert errno_of(lambda: h.update(4, v(40))) == errno.E2BIG  # full
    h.update(3, v(31))  # replacing works when full
    assert sorted(h.keys()) == [k(1), k(2), k(3)] and len(h) == 3
    h.delete(2)
    assert errno_of(lambda: h.delete(2)) == errno.ENOENT
    h.update(4, v(40))
    assert dict(h.items()) == {k(1): v(11), k(3): v(31), k(4): v(40)}
    assert k(4) in h and k(2) not in h
    h.clear()
    assert len(h) == 0


OPS = st.lists(st.tuples(st.sampled_from(["update", "delete"]), st.integers(0, 6), st.integers(0, 99),
                         st.sampled_from([BPF_ANY, BPF_NOEXIST, BPF_EXIST, 3])), max_size=40)


@settings(max_examples=200)
@given(OPS)
def test_matches_a_dict_model(ops: list[tuple[str, int, int, int]]) -> None:
    capacity = 4
    h = make(max_entries=capacity)
    model: dict[bytes, bytes] = {}
    for op, key, value, flags in ops:
        if op == "update":
            if flags == 3:
                expected = errno.EINVAL
            elif flags == BPF_NOEXIST and k(key) in model:
                expected = errno.EEXIST
            elif flags == BPF_EXIST and k(key) not in model:
                expected = errno.ENOENT
            elif k(key) not in model and len(model) == capacity:
                expected = errno.E2BIG
            else:
                expected = 0
                model[k(key)] = v(value)
            got = h.update_elem(k(key), v(value), flags, cpu=0)
        else:
            expected = 0 if model.pop(k(key), None) is not None else errno.ENOENT
            got = h.delete_elem(k(key))
        assert got == -expected
        assert dict(h.items()) == model
    assert len(h.free) + len(h.index) == capacity  # no slot is lost


def test_pointers_stay_valid_and_replacement_keeps_the_old_memory() -> None:
    h = make(max_entries=2)
    memory = MemoryMap()
    h.bind(memory, map_window(0))
    h.update(1, v(100))
    first = h.lookup_address(k(1), cpu=0)
    assert memory.read(first, 8) == 100
    memory.write(first, 8, 101)  # a program's store through the pointer
    assert h.lookup(1) == v(101)
    h.update_elem(k(1), v(102), BPF_ANY, cpu=1)  # written into CPU 1's spare slot
    second = h.lookup_address(k(1), cpu=0)
    assert second != first
    assert memory.read(second, 8) == 102 and memory.read(first, 8) == 101  # the old value stays put
    h.delete(1)
    assert h.lookup_address(k(1), cpu=0) == 0
    assert memory.read(second, 8) == 102  # freed, still mapped, as in the kernel
    h.update(7, v(7))
    assert h.lookup_address(k(7), cpu=0) == second  # the freed slot is reused first


def test_lock_flag_updates_in_place_and_keeps_the_lock_word() -> None:
    h = make(value_size=8, extra={"spin_lock_off": 4})
    h.update(1, b"abcdLOCK")
    before = h.index[k(1)]
    h.update(1, b"wxyz....", BPF_F_LOCK)
    assert h.index[k(1)] == before
    assert h.lookup(1) == b"wxyz\0\0\0\0"  # the lock word is never copied from the caller
    assert h.update_elem(k(9), b"12345678", BPF_F_LOCK | BPF_EXIST, cpu=0) == -errno.ENOENT


def test_numpy_snapshots() -> None:
    h = make(value_size=8)
    h.update(5, v(50))
    h.update(6, v(60))
    assert h.keys_array("<u4").tolist() == [5, 6]
    assert h.values_array("<u8").tolist() == [50, 60]
    assert h.values_array().shape == (2, 8)
    record = np.zeros((), dtype=[("lo", "<u4"), ("hi", "<u4")])
    record["lo"], record["hi"] = 1, 2
    h.update(np.uint32(7), record)
    assert h.lookup(7) == bytes.fromhex("0100000002000000")


@pytest.mark.parametrize("map_type, key_size, value_size, max_entries, flags, err", [
    ("hash", 0, 8, 1, 0, errno.EINVAL),
    ("hash", 4, 0, 1, 0, errno.EINVAL),
    ("hash", 4, 8, 0, 0, errno.EINVAL),
    ("hash", 600, 8, 1, 0, errno.E2BIG),
    ("hash", 4, 8, 1, 2, errno.EINVAL),  # BPF_F_NO_COMMON_LRU without LRU
    ("lru_hash", 4, 8, 1, BPF_F_NO_PREALLOC, ENOTSUPP),
    ("percpu_hash", 4, 40000, 1, 0, errno.E2BIG),
])
def test_creation_checks(map_type: str, key_size: int, value_size: int, max_entries: int, flags: int,
                         err: int) -> None:
    assert errno_of(lambda: make(map_type, key_size, value_size, max_entries, flags=flags)) == err


# -- per-CPU ----------------------------------------------------------------------------------
def test_percpu_hash_new_elements_from_programs_zero_other_cpus() -> None:
    h = make("percpu_hash", value_size=4, num_cpus=3)
    memory = MemoryMap()
    h.bind(memory, map_window(0))
    h.storage[:] = b"\xee" * len(h.storage)  # stale bytes in the free slots
    assert h.update_elem(k(1), b"\x05\0\0\0", BPF_ANY, cpu=1) == 0
    assert h.lookup(1) == [bytes(4), b"\x05\0\0\0", bytes(4)]
    assert h.update_elem(k(1), b"\x06\0\0\0", BPF_EXIST, cpu=2) == 0  # in place, only CPU 2
    assert h.lookup(1) == [bytes(4), b"\x05\0\0\0", b"\x06\0\0\0"]
    addr = h.lookup_address(k(1), cpu=2)
    assert memory.read(addr, 4) == 6
    assert h.lookup_address(k(1), cpu=0) == addr - 16
    h.update(1, [7, 8, 9])
    assert h.lookup_address(k(1), cpu=2) == addr  # in place
    assert h.values_array("<u4").tolist() == [[7, 8, 9]]
    assert errno_of(lambda: h.update(1, [1, 2, 3], BPF_F_LOCK)) == errno.EINVAL


# -- LRU --------------------------------------------------------------------------------------
def test_lru_evicts_the_least_recently_used() -> None:
    h = make("lru_hash", max_entries=3)
    for key in (1, 2, 3):
        h.update(key, v(key))
    h.update(1, v(11))  # 1 is now the most recent: order 2, 3, 1
    h.update(4, v(4))  # evicts 2
    assert sorted(h.keys()) == [k(1), k(3), k(4)]
    h.lookup(3)  # a lookup from Python does not count as a use ...
    h.update(5, v(5))  # ... so 3 goes
    assert sorted(h.keys()) == [k(1), k(4), k(5)]
    memory = MemoryMap()
    h.bind(memory, map_window(0))
    assert h.lookup_address(k(1), cpu=0)  # a program's lookup does: order 4, 5, 1
    h.update(6, v(6))
    assert sorted(h.keys()) == [k(1), k(5), k(6)]
    assert errno_of(lambda: h.update(7, v(7), BPF_EXIST)) == errno.ENOENT  # failing updates evict nothing
    assert len(h) == 3 and k(5) in h
    assert errno_of(lambda: h.update(7, v(7), BPF_F_LOCK)) == errno.EINVAL


def test_lru_percpu_evicts_too() -> None:
    h = make("lru_percpu_hash", value_size=4, max_entries=2, num_cpus=2)
    h.update_elem(k(1), b"1111", BPF_ANY, cpu=0)
    h.update_elem(k(2), b"2222", BPF_ANY, cpu=1)
    h.update_elem(k(3), b"3333", BPF_ANY, cpu=0)
    assert sorted(h.keys()) == [k(2), k(3)]
    assert h.lookup(3) == [b"3333", bytes(4)]


def test_lru_eviction_frees_pointers_for_reuse() -> None:
    h = make("lru_hash", max_entries=1)
    memory = MemoryMap()
    h.bind(memory, map_window(0))
    h.update(1, v(1))
    addr = h.lookup_address(k(1), cpu=0)
    h.update(2, v(2))
    assert h.lookup(1) is None and h.lookup_address(k(2), cpu=0) == addr
    with pytest.raises(MemoryFault):
        memory.read(map_window(0), 8)
