"""Array maps (array, percpu_array, global data): Python API, numpy views,
the BPF-side operations and binding into a run's memory. Expected values are
worked out by hand from the kernel's semantics (arraymap.c); the kernel
itself checks the Python API in test_maps_kernel.py."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from ebpfvm.errors import MemoryFault, UserInputError
from ebpfvm.memory import MemoryMap, map_window
from ebpfvm.maps import (BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_NOEXIST,
                         VALUES_OFFSET, ArrayMap, MapDefinition, MapError, PercpuArrayMap, create_map)


def array(value_size: int = 8, max_entries: int = 4, **kw: object) -> ArrayMap:
    bpf_map = create_map(MapDefinition("arr", "array", 4, value_size, max_entries, **kw))  # type: ignore[arg-type]
    assert isinstance(bpf_map, ArrayMap)
    return bpf_map


def errno_of(call: object) -> int:
    with pytest.raises(MapError) as info:
        call()  # type: ignore[operator]
    return info.value.errno


def test_every_index_exists_and_starts_zeroed() -> None:
    arr = array()
    assert len(arr) == 4
    assert arr.keys() == [i.to_bytes(4, "little") for i in range(4)]
    assert arr.lookup(3) == bytes(8)
    assert arr.lookup(4) is None  # out of range: ENOENT from bpf(2)
    assert arr.lookup(b"\x02\x00\x00\x00") == bytes(8)


def test_update_flags_follow_the_kernel() -> None:
    arr = array()
    arr.update(1, b"A" * 8)
    arr.update(1, b"B" * 8, BPF_EXIST)  # always exists
    assert arr.lookup(1) == b"B" * 8
    assert errno_of(lambda: arr.update(1, b"C" * 8, BPF_NOEXIST)) == errno.EEXIST
    assert errno_of(lambda: arr.update(1, b"C" * 8, 3)) == errno.EINVAL
    assert errno_of(lambda: arr.update(1, b"C" * 8, BPF_F_LOCK)) == errno.EINVAL  # no spin lock
    assert errno_of(lambda: arr.update(4, b"C" * 8)) == errno.E2BIG
    assert errno_of(lambda: arr.delete(1)) == errno.EINVAL
    assert arr.lookup(1) == b"B" * 8


def test_keys_and_values_are_checked() -> None:
    arr = array()
    assert errno_of(lambda: arr.update(b"\x00" * 8, b"A" * 8)) == errno.EINVAL  # 8-byte key
    assert errno_of(lambda: arr.update(0, b"short")) == errno.EINVAL
    assert errno_of(lambda: arr.update(0, "text")) == errno.EINVAL
    assert errno_of(lambda: arr.update(-1 << 40, b"A" * 8)) == errno.EINVAL
    arr.update(np.uint32(2), np.uint64(0x1122334455667788))  # numpy scalars: their bytes
    assert arr.lookup(2) == bytes.fromhex("8877665544332211")
    arr.update(0, -1)  # an int value of 8 bytes, two's complement
    assert arr.lookup(0) == b"\xff" * 8
    assert isinstance(MapError(1, "x"), UserInputError)


def test_numpy_views_alias_storage_with_kernel_stride() -> None:
    arr = array(value_size=12, max_entries=3)  # values 16 bytes apart
    assert len(arr.storage) == 48
    raw = arr.as_array()
    assert raw.shape == (3, 12) and raw.strides == (16, 1)
    words = arr.as_array("<u4")
    assert words.shape == (3, 3)
    words[1, 2] = 0xDEADBEEF
    assert arr.lookup(1) == bytes(8) + bytes.fromhex("efbeadde")
    arr.update(2, bytes(range(12)))
    assert list(raw[2]) == list(range(12))
    record = np.dtype([("a", "<u4"), ("b", "<u8")], align=False)
    assert arr.values_array(record)["a"][2] == 0x03020100
    with pytest.raises(MapError):
        arr.as_array("<u8")  # 8 does not divide 12


def test_initial_value_and_value_address() -> None:
    data = create_map(MapDefinition(".data", "array", 4, 6, 1, initial_value=b"hello"))
    assert data.lookup(0) == b"hello\x00"
    base = map_window(2)
    assert data.value_address(3, base) == base + VALUES_OFFSET + 3
    memory = MemoryMap()
    data.bind(memory, base)
    assert data.handle == base
    assert data.value_address(1) == base + VALUES_OFFSET + 1
    assert memory.read_bytes(data.value_address(0), 5) == b"hello"
    with pytest.raises(MemoryFault):
        memory.read(base, 1)  # the handle itself is not readable
    with pytest.raises(MapError):
        create_map(MapDefinition("p", "percpu_array", 4, 8, 1)).value_address(0, base)


def test_bound_storage_is_shared_with_programs() -> None:
    arr = array()
    memory = MemoryMap()
    arr.bind(memory, map_window(0))
    address = arr.lookup_address((2).to_bytes(4, "little"), cpu=0)
    assert address == map_window(0) + VALUES_OFFSET + 16
    memory.write(address, 8, 0x0102030405060708)
    assert arr.lookup(2) == bytes.fromhex("0807060504030201")
    assert arr.lookup_address((4).to_bytes(4, "little"), cpu=0) == 0
    arr.bind(memory, map_window(0))  # binding again into the same memory is harmless
    assert len(memory) == 1


def test_bpf_side_returns_errnos() -> None:
    arr = array()
    key = (1).to_bytes(4, "little")
    assert arr.update_elem(key, b"Z" * 8, BPF_ANY, cpu=0) == 0
    assert arr.update_elem(key, b"Z" * 8, BPF_NOEXIST, cpu=0) == -errno.EEXIST
    assert arr.update_elem((9).to_bytes(4, "little"), b"Z" * 8, BPF_ANY, cpu=0) == -errno.E2BIG
    assert arr.update_elem(key, b"Z" * 8, 8, cpu=0) == -errno.EINVAL
    assert arr.delete_elem(key) == -errno.EINVAL
    assert arr.lookup(1) == b"Z" * 8


def test_read_only_maps_are_not_writable_by_programs() -> None:
    rodata = create_map(MapDefinition(".rodata", "array", 4, 4, 1, initial_value=b"ro!!", read_only=True))
    flagged = array(max_entries=1, flags=BPF_F_RDONLY_PROG)
    memory = MemoryMap()
    rodata.bind(memory, map_window(0))
    flagged.bind(memory, map_window(1))
    assert memory.read_bytes(rodata.value_address(0), 4) == b"ro!!"
    for bpf_map in (rodata, flagged):
        with pytest.raises(MemoryFault):
            memory.write(bpf_map.value_address(0), 1, 0)
    rodata.update(0, b"new!")  # user space may still write
    assert memory.read_bytes(rodata.value_address(0), 4) == b"new!"


def test_user_space_read_only_and_frozen() -> None:
    arr = array(flags=BPF_F_RDONLY)
    assert errno_of(lambda: arr.update(0, bytes(8))) == errno.EPERM
    other = array()
    other.freeze()
    assert errno_of(lambda: other.update(0, bytes(8))) == errno.EPERM
    assert other.update_elem(bytes(4), b"x" * 8, BPF_ANY, cpu=0) == 0  # programs still may


def test_spin_lock_word_is_kept_and_lock_flag_allowed() -> None:
    arr = create_map(MapDefinition("locked", "array", 4, 8, 1, extra={"spin_lock_off": 0}))
    arr.storage[0:4] = b"LOCK"
    arr.update(0, b"xxxxabcd", BPF_F_LOCK)
    assert arr.lookup(0) == b"LOCKabcd"
    arr.update(0, b"yyyyefgh")
    assert arr.lookup(0) == b"LOCKefgh"


@pytest.mark.parametrize("key_size, value_size, max_entries, flags, err", [
    (8, 4, 1, 0, errno.EINVAL),
    (4, 0, 1, 0, errno.EINVAL),
    (4, 4, 0, 0, errno.EINVAL),
    (4, 4, 1, 1, errno.EINVAL),  # BPF_F_NO_PREALLOC means nothing to arrays
])
def test_creation_checks(key_size: int, value_size: int, max_entries: int, flags: int, err: int) -> None:
    assert errno_of(lambda: create_map(MapDefinition("a", "array", key_size, value_size, max_entries,
                                                     flags=flags))) == err


def test_unsupported_type_is_a_clear_error() -> None:
    with pytest.raises(MapError) as info:
        create_map(MapDefinition("s", "sockmap", 4, 4, 1))
    assert "sockmap" in str(info.value) and "not supported" in str(info.value)
    assert info.value.errno == errno.EINVAL


# -- percpu_array ---------------------------------------------------------------------------
def percpu(num_cpus: int = 3) -> PercpuArrayMap:
    bpf_map = create_map(MapDefinition("pc", "percpu_array", 4, 4, 2), num_cpus=num_cpus)
    assert isinstance(bpf_map, PercpuArrayMap)
    return bpf_map


def test_percpu_values_from_python() -> None:
    pc = percpu()
    assert pc.value_bytes == 24  # 3 CPUs x round_up(4, 8)
    pc.update(0, b"aaaa")  # one value for every CPU
    assert pc.lookup(0) == [b"aaaa"] * 3
    pc.update(0, [1, 2, 3])
    assert pc.lookup(0) == [(n).to_bytes(4, "little") for n in (1, 2, 3)]
    pc.update(1, b"AAAA\0\0\0\0BBBB\0\0\0\0CCCC\0\0\0\0")  # the kernel's layout
    assert pc.lookup(1) == [b"AAAA", b"BBBB", b"CCCC"]
    assert errno_of(lambda: pc.update(0, [1, 2])) == errno.EINVAL
    view = pc.as_array("<u4")
    assert view.shape == (2, 3)
    assert view[0].tolist() == [1, 2, 3]


def test_percpu_bpf_side_sees_its_cpu() -> None:
    pc = percpu()
    memory = MemoryMap()
    pc.bind(memory, map_window(0))
    key = (1).to_bytes(4, "little")
    assert pc.update_elem(key, b"\x07\0\0\0", BPF_ANY, cpu=2) == 0
    assert pc.lookup(1) == [bytes(4), bytes(4), b"\x07\0\0\0"]
    addresses = [pc.lookup_address(key, cpu) for cpu in range(3)]
    assert [b - a for a, b in zip(addresses, addresses[1:])] == [8, 8]
    memory.write(addresses[0], 4, 9)
    assert pc.lookup(1)[0] == b"\x09\0\0\0"
    assert errno_of(lambda: pc.update(1, b"xxxx", BPF_F_LOCK)) == errno.EINVAL


def test_direct_value_access_only_for_single_entry_arrays() -> None:
    # The kernel refuses lddw map_value on an array of 2+ entries (ENOTSUPP,
    # recorded in conformance/verifier/map-direct-value-array-2-entries.case)
    # and on offsets past the value.
    assert errno_of(lambda: array(max_entries=2).value_address(0)) == 524
    assert errno_of(lambda: array(max_entries=1).value_address(8)) == errno.EACCES
    assert array(max_entries=1).value_address(7, map_window(0)) == array(max_entries=1).value_address(0, map_window(0)) + 7
