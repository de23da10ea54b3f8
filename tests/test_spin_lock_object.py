"""A map value with a struct bpf_spin_lock, from BTF to BPF_F_LOCK and the lock helpers."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from ebpfvm.elf import load_object
from ebpfvm.maps import BPF_F_LOCK, MapError
from ebpfvm.runtime import Runtime

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "spin_lock.o"


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def test_the_loader_finds_the_lock_in_the_value_btf():
    (definition,) = load_object(FIXTURE).maps
    assert definition.extra["spin_lock_off"] == 8  # after __u64 hits


def test_lock_flag_updates_keep_the_lock_word_and_programs_take_the_lock():
    runtime = Runtime.for_object(load_object(FIXTURE))
    totals = runtime.maps["locked"]
    totals.update(0, u64(5) + u64(0) + u64(9))
    totals.update(0, u64(6) + u64(0xFFFF) + u64(10), BPF_F_LOCK)
    assert totals.lookup(0) == u64(6) + u64(0) + u64(10)  # BPF_F_LOCK never copies the lock itself
    runtime.run("count_bytes", packet=bytes(60))
    assert totals.lookup(0)[16:] == u64(10 + 60)  # a tc program sees the whole 60-byte frame


def test_lock_flag_on_a_value_without_a_lock_is_einval():
    runtime = Runtime.for_object(load_object(Path(__file__).resolve().parents[1] / "examples" / "xdp_firewall.o"))
    with pytest.raises(MapError) as info:
        runtime.maps["blocked_ports"].update(b"\x00\x35", u64(1), BPF_F_LOCK)
    assert info.value.errno == errno.EINVAL


def test_the_kernel_accepts_the_locking_program():
    from ebpfvm.kernel.objects import verify_object_in_kernel

    from kernel_support import require_kernel

    require_kernel()
    verdicts = verify_object_in_kernel(load_object(FIXTURE))
    assert all(v.accepted for v in verdicts.values()), verdicts


def test_kernel_and_runtime_count_the_same_bytes_under_the_lock():
    from ebpfvm.kernel.objects import test_run_in_kernel

    from kernel_support import require_kernel

    require_kernel()
    obj = load_object(FIXTURE)
    start = u64(1) + u64(0) + u64(100)
    kernel = test_run_in_kernel(obj, "count_bytes", bytes(60), map_setup={"locked": {bytes(4): start}})
    runtime = Runtime.for_object(obj)
    runtime.maps["locked"].update(0, start)
    ours = runtime.run("count_bytes", packet=bytes(60))
    assert ours.r0 == kernel.retval == 0
    assert runtime.maps["locked"].lookup(0) == kernel.maps["locked"][bytes(4)] == u64(1) + u64(0) + u64(160)
