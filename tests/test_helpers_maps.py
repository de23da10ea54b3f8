"""The map and output helpers (ebpfvm/helpers/maps.py, output.py) run by the
interpreter on small assembled programs, with maps bound the way a runtime
binds them (``bind_maps`` before every run, ``map_pseudo_resolver`` for
lddw). The last test runs the same helper sequence in the kernel
(BPF_PROG_TEST_RUN) and compares every return value and the maps."""

from __future__ import annotations

import errno
import os
import struct
from typing import Sequence

import pytest

from ebpfvm.asm import assemble
from ebpfvm.errors import MemoryFault
from ebpfvm.helpers import ArgKind, HelperEnv, RetKind, default_registry
from ebpfvm.helpers.prototype import ArgFlag
from ebpfvm.interp import Interpreter
from ebpfvm.interp.faults import NotAMap
from ebpfvm.maps import (BPF_F_NO_PREALLOC, BpfMap, MapDefinition, MapFault, PerfEvent, bind_maps, create_map,
                         map_pseudo_resolver)
from ebpfvm.program import Program

try:
    from kernel_support import require_kernel
except ImportError:  # pragma: no cover
    from tests.kernel_support import require_kernel

MASK64 = (1 << 64) - 1


def neg(err: int) -> int:
    """-err as the u64 a helper leaves in r0."""
    return -err & MASK64


class Harness:
    """An interpreter whose machine gets ``maps`` bound before every run."""

    def __init__(self, source: str | Program, maps: Sequence[BpfMap], cpu: int = 0,
                 prog_type: str | None = None) -> None:
        program = assemble(source) if isinstance(source, str) else source
        if prog_type is not None:
            program = Program(program.instructions, prog_type=prog_type)
        self.maps = list(maps)
        self.interp = Interpreter(program, resolve_pseudo=map_pseudo_resolver(self.maps),
                                  env=HelperEnv(cpu_id=cpu), helpers=default_registry())
        machine = self.interp.machine
        reset = machine.reset

        def reset_and_bind(mem: bytes) -> None:
            reset(mem)
            machine.maps = bind_maps(machine.memory, self.maps)
        machine.reset = reset_and_bind  # type: ignore[method-assign]

    def run(self, mem: bytes = b"") -> int:
        return self.interp.run(mem).r0


def array(name: str = "arr", value_size: int = 8, max_entries: int = 4, **kw: object) -> BpfMap:
    return create_map(MapDefinition(name, "array", 4, value_size, max_entries, **kw))  # type: ignore[arg-type]


COUNTER = """
    stw [%r10-4], 2
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call bpf_map_lookup_elem
    jeq %r0, 0, miss
    mov %r1, 1
    lock add [%r0], %r1
    ldxdw %r0, [%r0]
    exit
miss:
    mov %r0, -1
    exit
"""


def test_lookup_returns_a_pointer_into_the_map_and_state_persists() -> None:
    counts = array()
    harness = Harness(COUNTER, [counts])
    assert [harness.run() for _ in range(3)] == [1, 2, 3]
    assert counts.as_array("<u8").tolist() == [0, 0, 3, 0]
    counts.update(2, 41)
    assert harness.run() == 42


def test_percpu_lookup_sees_the_running_cpu() -> None:
    per_cpu = create_map(MapDefinition("pc", "percpu_array", 4, 8, 4), num_cpus=2)
    Harness(COUNTER, [per_cpu], cpu=1).run()
    Harness(COUNTER, [per_cpu], cpu=1).run()
    Harness(COUNTER, [per_cpu], cpu=0).run()
    assert per_cpu.as_array("<u8")[2].tolist() == [1, 2]


UPDATE_TWICE = """
    stw [%r10-4], 7
    stdw [%r10-16], 99
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 1
    lddw %r1, map_fd 0
    call bpf_map_update_elem
    mov %r6, %r0
    call bpf_map_update_elem
    exit
"""


def test_update_returns_zero_then_eexist() -> None:
    table = create_map(MapDefinition("t", "hash", 4, 8, 4))
    harness = Harness(UPDATE_TWICE, [table])
    assert harness.run() == neg(errno.EEXIST)
    assert harness.interp.machine.regs[6] == 0  # the first update
    assert table.lookup(7) == (99).to_bytes(8, "little")


def test_delete_of_an_absent_key_is_enoent() -> None:
    table = create_map(MapDefinition("t", "hash", 4, 8, 4))
    source = """
        stw [%r10-4], 3
        mov %r2, %r10
        add %r2, -4
        lddw %r1, map_fd 0
        call bpf_map_delete_elem
        exit
    """
    assert Harness(source, [table]).run() == neg(errno.ENOENT)
    table.update(3, 1)
    assert Harness(source, [table]).run() == 0 and len(table) == 0


def test_bad_pointers_and_handles_fault() -> None:
    table = create_map(MapDefinition("t", "hash", 4, 8, 4))
    with pytest.raises(MemoryFault):
        Harness("lddw %r1, map_fd 0\nmov %r2, 0\ncall bpf_map_lookup_elem\nexit", [table]).run()
    with pytest.raises(NotAMap):
        Harness("mov %r1, 1234\nmov %r2, %r10\ncall bpf_map_lookup_elem\nexit", [table]).run()


def test_read_only_maps() -> None:
    rodata = create_map(MapDefinition(".rodata", "array", 4, 8, 1, initial_value=b"\x2a", read_only=True))
    read = Harness("lddw %r1, map_value 0, 0\nldxb %r0, [%r1]\nexit", [rodata])
    assert read.run() == 42
    with pytest.raises(MemoryFault):
        Harness("lddw %r1, map_value 0, 0\nstb [%r1], 1\nexit", [rodata]).run()
    update = """
        stw [%r10-4], 0
        stdw [%r10-16], 0
        mov %r2, %r10
        add %r2, -4
        mov %r3, %r10
        add %r3, -16
        mov %r4, 0
        lddw %r1, map_fd 0
        call bpf_map_update_elem
        exit
    """
    assert Harness(update, [rodata]).run() == neg(errno.EPERM)
    assert rodata.lookup(0)[0] == 42


def test_global_data_through_map_value() -> None:
    data = array(".data", value_size=16, max_entries=1, initial_value=b"\x01\x02\x03\x04")
    source = """
        lddw %r1, map_value 0, 2
        ldxh %r0, [%r1]
        stw [%r1+4], 0x55667788
        exit
    """
    assert Harness(source, [data]).run() == 0x0403
    assert data.lookup(0)[6:10] == bytes.fromhex("88776655")


QUEUE_OPS = """
    stw [%r10-4], 11
    mov %r2, %r10
    add %r2, -4
    mov %r3, 0
    lddw %r1, map_fd 0
    call bpf_map_push_elem
    stw [%r10-8], -1
    mov %r2, %r10
    add %r2, -8
    call bpf_map_peek_elem
    ldxw %r6, [%r10-8]
    call bpf_map_pop_elem
    stw [%r10-8], -1
    call bpf_map_pop_elem
    ldxw %r7, [%r10-8]
    lsh %r6, 32
    or %r6, %r7
    mov %r8, %r0
    mov %r0, %r6
    exit
"""


def test_push_peek_pop_and_empty_pop_zero_fills() -> None:
    queue = create_map(MapDefinition("q", "queue", 0, 4, 2))
    harness = Harness(QUEUE_OPS, [queue])
    # peeked 11; the second pop found the queue empty and wrote zeros
    assert harness.run() == 11 << 32
    assert harness.interp.machine.regs[8] == neg(errno.ENOENT)
    assert len(queue) == 0


def test_map_in_map_lookup_returns_a_usable_handle() -> None:
    inner_def = MapDefinition("inner", "array", 4, 8, 1)
    inner = create_map(inner_def)
    inner.update(0, 0x1234)
    outer = create_map(MapDefinition("outer", "array_of_maps", 4, 4, 1, inner=inner_def))
    outer.update(0, inner)
    source = """
        stw [%r10-4], 0
        mov %r2, %r10
        add %r2, -4
        lddw %r1, map_fd 0
        call bpf_map_lookup_elem
        jeq %r0, 0, out
        mov %r1, %r0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_lookup_elem
        jeq %r0, 0, out
        ldxdw %r0, [%r0]
    out:
        exit
    """
    assert Harness(source, [outer]).run() == 0x1234


# -- output helpers -----------------------------------------------------------------------------
RINGBUF = """
    lddw %r1, map_fd 0
    mov %r2, 12
    mov %r3, 0
    call bpf_ringbuf_reserve
    jeq %r0, 0, out
    stdw [%r0], 0x11
    stw [%r0+8], 0x22
    mov %r1, %r0
    mov %r2, 0
    call bpf_ringbuf_submit
    stdw [%r10-8], 0x33
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -8
    mov %r3, 8
    mov %r4, 0
    call bpf_ringbuf_output
    mov %r6, %r0
    lddw %r1, map_fd 0
    mov %r2, 0
    mov %r3, 0
    call bpf_ringbuf_reserve
    mov %r1, %r0
    mov %r2, 0
    call bpf_ringbuf_discard
    lddw %r1, map_fd 0
    mov %r2, 3
    call bpf_ringbuf_query
    add %r0, %r6
out:
    exit
"""


def test_ringbuf_helpers() -> None:
    ring = create_map(MapDefinition("rb", "ringbuf", 0, 0, 4096))
    # records of 8+12 -> 24, 8+8 -> 16 and 8+0 -> 8 bytes: producer at 48
    assert Harness(RINGBUF, [ring]).run() == 48
    assert ring.consume() == [struct.pack("<QI", 0x11, 0x22), struct.pack("<Q", 0x33)]


def test_ringbuf_reserve_with_flags_is_null_and_bad_submit_faults() -> None:
    ring = create_map(MapDefinition("rb", "ringbuf", 0, 0, 4096))
    other = array()
    reserve = "lddw %r1, map_fd 0\nmov %r2, 8\nmov %r3, 1\ncall bpf_ringbuf_reserve\nexit"
    assert Harness(reserve, [ring]).run() == 0
    with pytest.raises(MapFault):
        Harness("mov %r1, %r10\nmov %r2, 0\ncall bpf_ringbuf_submit\nexit", [ring]).run()
    with pytest.raises(MapFault):
        Harness("lddw %r1, map_fd 0\nmov %r2, 0\ncall bpf_ringbuf_query\nexit", [other]).run()
    output = "lddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 8\nmov %r4, 4\n" \
             "stdw [%r10-8], 0\ncall bpf_ringbuf_output\nexit"
    assert Harness(output, [ring]).run() == neg(errno.EINVAL)


def perf_output(flags: str) -> str:
    return f"""
        lddw %r2, 0x0807060504030201
        stxdw [%r10-8], %r2
        lddw %r2, map_fd 0
        lddw %r3, {flags}
        mov %r4, %r10
        add %r4, -8
        mov %r5, 8
        call bpf_perf_event_output
        exit
    """


def test_perf_event_output() -> None:
    events = create_map(MapDefinition("events", "perf_event_array", 4, 4, 0), num_cpus=2)
    assert Harness(perf_output("0xffffffff"), [events], cpu=1).run() == 0  # BPF_F_CURRENT_CPU
    assert Harness(perf_output("0"), [events], cpu=1).run() == neg(errno.EOPNOTSUPP)  # slot 0 is CPU 0's
    assert Harness(perf_output("5"), [events], cpu=1).run() == neg(errno.E2BIG)
    assert Harness(perf_output("0x3ffffffff"), [events], cpu=1).run() == neg(errno.EINVAL)  # ctx len: not a packet
    # In a packet program the context length appends that many packet bytes.
    xdp = Harness(perf_output("0x3ffffffff"), [events], cpu=0, prog_type="xdp")
    assert xdp.run(b"\xaa\xbb\xcc\xdd") == 0
    assert xdp.run(b"\xaa\xbb") == neg(errno.EFAULT)
    assert events.consume() == [PerfEvent(1, bytes(range(1, 9))), PerfEvent(0, bytes(range(1, 9)) + b"\xaa\xbb\xcc")]


# -- prototypes, as the kernel declares them (bpf_func_proto) -------------------------------------
def test_prototypes_follow_the_kernel() -> None:
    registry = default_registry()
    K, R, F = ArgKind, RetKind, ArgFlag
    expected = {
        1: (R.PTR_TO_MAP_VALUE_OR_NULL, (K.CONST_MAP_PTR, K.PTR_TO_MAP_KEY), False),
        2: (R.INTEGER, (K.CONST_MAP_PTR, K.PTR_TO_MAP_KEY, K.PTR_TO_MAP_VALUE, K.ANYTHING), False),
        3: (R.INTEGER, (K.CONST_MAP_PTR, K.PTR_TO_MAP_KEY), False),
        25: (R.INTEGER, (K.PTR_TO_CTX, K.CONST_MAP_PTR, K.ANYTHING, K.PTR_TO_MEM, K.CONST_SIZE_OR_ZERO), True),
        87: (R.INTEGER, (K.CONST_MAP_PTR, K.PTR_TO_MAP_VALUE, K.ANYTHING), False),
        88: (R.INTEGER, (K.CONST_MAP_PTR, K.PTR_TO_MAP_VALUE), False),
        89: (R.INTEGER, (K.CONST_MAP_PTR, K.PTR_TO_MAP_VALUE), False),
        130: (R.INTEGER, (K.CONST_MAP_PTR, K.PTR_TO_MEM, K.CONST_SIZE_OR_ZERO, K.ANYTHING), False),
        131: (R.PTR_TO_ALLOC_MEM_OR_NULL, (K.CONST_MAP_PTR, K.CONST_ALLOC_SIZE_OR_ZERO, K.ANYTHING), False),
        132: (R.VOID, (K.PTR_TO_ALLOC_MEM, K.ANYTHING), False),
        133: (R.VOID, (K.PTR_TO_ALLOC_MEM, K.ANYTHING), False),
        134: (R.INTEGER, (K.CONST_MAP_PTR, K.ANYTHING), False),
    }
    for helper_id, (ret, args, gpl_only) in expected.items():
        proto = registry[helper_id].proto
        assert (proto.ret, proto.args, proto.gpl_only) == (ret, args, gpl_only), registry[helper_id].name
    assert registry[88].proto.flags(1) == F.UNINIT | F.WRITE
    assert registry[132].proto.flags(0) == F.RELEASE
    assert registry[130].proto.flags(1) == F.RDONLY


# -- the same helper calls in the kernel --------------------------------------------------------------
def _differential_program() -> tuple[str, int]:
    """A program calling map helpers with every kind of outcome; each
    helper's r0 (or the value read through a returned pointer) goes to
    results[i] of map 0. Maps: 0 results, 1 hash (max 2), 2 queue (max 2),
    3 percpu_hash, 4 lpm_trie (/32 IPv4), 5 ringbuf."""
    lines = ["lddw %r6, map_value 0, 0"]
    slot = 0

    def result() -> None:
        nonlocal slot
        lines.append(f"stxdw [%r6+{8 * slot}], %r0")
        slot += 1

    def key_value(key: int, value: int) -> None:
        lines.extend([f"stw [%r10-4], {key}", f"stdw [%r10-16], {value}", "mov %r2, %r10", "add %r2, -4",
                      "mov %r3, %r10", "add %r3, -16"])

    def update(map_index: int, key: int, value: int, flags: int) -> None:
        key_value(key, value)
        lines.extend([f"mov %r4, {flags}", f"lddw %r1, map_fd {map_index}", "call bpf_map_update_elem"])
        result()

    def keyed(helper: str, map_index: int, key: int, deref: bool = False) -> None:
        lines.extend([f"stw [%r10-4], {key}", "mov %r2, %r10", "add %r2, -4", f"lddw %r1, map_fd {map_index}",
                      f"call {helper}"])
        if deref:
            lines.extend(["jeq %r0, 0, +1", "ldxdw %r0, [%r0]"])
        result()

    for flags in (1, 1, 2, 0, 3, 4):
        update(1, 5, 50 + flags, flags)  # NOEXIST ok, EEXIST, EXIST ok, ANY ok, EINVAL, EINVAL (no lock)
    update(1, 6, 60, 2)  # ENOENT
    update(1, 6, 61, 0)
    update(1, 7, 70, 0)  # E2BIG: full
    keyed("bpf_map_lookup_elem", 1, 5, deref=True)
    keyed("bpf_map_lookup_elem", 1, 7, deref=True)
    keyed("bpf_map_delete_elem", 1, 6)
    keyed("bpf_map_delete_elem", 1, 6)  # ENOENT
    for value, flags in ((1, 0), (2, 0), (3, 0), (4, 2), (5, 1), (6, 3)):  # E2BIG, overwrite, EINVAL x2
        lines.extend([f"stw [%r10-8], {value}", "mov %r2, %r10", "add %r2, -8", f"mov %r3, {flags}",
                      "lddw %r1, map_fd 2", "call bpf_map_push_elem"])
        result()
    for helper in ("bpf_map_peek_elem", "bpf_map_pop_elem", "bpf_map_pop_elem", "bpf_map_pop_elem"):
        lines.extend(["stw [%r10-8], -1", "mov %r2, %r10", "add %r2, -8", "lddw %r1, map_fd 2",
                      f"call {helper}"])
        result()
        lines.append("ldxw %r0, [%r10-8]")
        result()
    update(3, 1, 111, 0)  # a new per-CPU element: other CPUs read zero
    update(3, 1, 112, 2)
    for prefixlen, data in ((8, 0x0A), (16, 0x020A), (24, 0x03020A)):
        lines.extend([f"stw [%r10-8], {prefixlen}", f"stw [%r10-4], {data}", f"stdw [%r10-16], {prefixlen}",
                      "mov %r2, %r10", "add %r2, -8", "mov %r3, %r10", "add %r3, -16", "mov %r4, 0",
                      "lddw %r1, map_fd 4", "call bpf_map_update_elem"])
        result()
    for prefixlen, data in ((32, 0x0903020A), (32, 0x0909020A), (32, 0x0909090A), (32, 0x0909090B), (12, 0x0903020A)):
        lines.extend([f"stw [%r10-8], {prefixlen}", f"stw [%r10-4], {data}", "mov %r2, %r10", "add %r2, -8",
                      "lddw %r1, map_fd 4", "call bpf_map_lookup_elem", "jeq %r0, 0, +1", "ldxdw %r0, [%r0]"])
        result()
    lines.extend(["stdw [%r10-16], 7", "lddw %r1, map_fd 5", "mov %r2, %r10", "add %r2, -16", "mov %r3, 5",
                  "mov %r4, 0", "call bpf_ringbuf_output"])
    result()
    lines.extend(["lddw %r1, map_fd 5", "mov %r2, 20", "mov %r3, 0", "call bpf_ringbuf_reserve",
                  "jeq %r0, 0, +3", "mov %r1, %r0", "mov %r2, 0", "call bpf_ringbuf_discard"])
    for selector in range(5):
        lines.extend(["lddw %r1, map_fd 5", f"mov %r2, {selector}", "call bpf_ringbuf_query"])
        result()
    lines.extend(["mov %r0, 0", "exit"])
    return "\n".join(lines), slot


def _differential_maps(slots: int) -> list[MapDefinition]:
    return [
        MapDefinition("results", "array", 4, 8 * slots, 1),
        MapDefinition("table", "hash", 4, 8, 2),
        MapDefinition("queue", "queue", 0, 4, 2),
        MapDefinition("percpu", "percpu_hash", 4, 8, 2),
        MapDefinition("routes", "lpm_trie", 8, 8, 4, flags=BPF_F_NO_PREALLOC),
        MapDefinition("ring", "ringbuf", 0, 0, 4096),
    ]


def test_helpers_match_kernel() -> None:
    require_kernel()
    from ebpfvm.kernel import create_map as kernel_create_map
    from ebpfvm.kernel import load_program, relocate_map_indices
    from ebpfvm.kernel.maps import possible_cpus

    source, slots = _differential_program()
    program = assemble(source)
    definitions = _differential_maps(slots)
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})  # the per-CPU map must be written on a known CPU
    try:
        kernel_maps = [kernel_create_map(d.map_type, d.key_size, d.value_size, d.max_entries, d.flags)
                       for d in definitions]
        try:
            code = relocate_map_indices(program.to_bytes(), [m.fd for m in kernel_maps])
            with load_program(code, "socket_filter", log_level=0) as loaded:
                assert loaded.test_run(bytes(64)).retval == 0
            kernel_results = kernel_maps[0].lookup(bytes(4))
            kernel_table = kernel_maps[1].dump()
            kernel_percpu = kernel_maps[3].lookup((1).to_bytes(4, "little"))
            kernel_routes = kernel_maps[4].dump()
        finally:
            for kmap in kernel_maps:
                kmap.close()
    finally:
        os.sched_setaffinity(0, before)

    ours = [create_map(d, num_cpus=possible_cpus()) for d in definitions]
    Harness(program, ours, cpu=cpu).run(bytes(64))
    got = struct.unpack(f"<{slots}Q", ours[0].lookup(0))
    want = struct.unpack(f"<{slots}Q", kernel_results)
    assert got == want
    assert dict(ours[1].items()) == kernel_table
    stride = 8
    assert ours[3].lookup(1) == [kernel_percpu[i:i + 8] for i in range(0, len(kernel_percpu), stride)]
    assert dict(ours[4].items()) == kernel_routes
