"""The runtime against the live kernel: the same programs loaded with bpf(2)
and run with BPF_PROG_TEST_RUN on the same packets must give the same return
values, output packets and contexts.

* which context accesses each program type allows: a sweep of every aligned
  offset and size, read and write, through the kernel's verifier;
* the values of __sk_buff / xdp_md fields in a test run;
* the packet helpers (checksums, skb loads and stores, the XDP adjusters,
  redirect) on generated arguments;
* tail calls (the limit of 33, empty slots) and bpf_loop / for_each callbacks.

The kernel's test run of a socket filter or cgroup skb program hands back the
packet with a zeroed Ethernet header; the runtime keeps the one it was given,
so those bytes are compared separately.
"""

from __future__ import annotations

import os
import platform
import shutil
import struct
import subprocess
from typing import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.asm import assemble
from ebpfvm.kernel import KernelVerifierError, create_map as kernel_create_map, load_program, relocate_map_indices
from ebpfvm.maps import MapDefinition
from ebpfvm.program import Program
from ebpfvm.progtypes import ContextAccessError, get_prog_type
from ebpfvm.runtime import ProgramRun, Runtime

from kernel_support import require_kernel
from runtime_support import frame, tcp, typed, udp

EXAMPLES = 300 if os.environ.get("EBPFVM_HYPOTHESIS_PROFILE") == "deep" else 25
SIZES = {1: "b", 2: "h", 4: "w", 8: "dw"}


@pytest.fixture(autouse=True)
def _kernel() -> None:
    require_kernel()


def kernel_loads(text: str, prog_type: str, attach: str | int = 0) -> bool:
    try:
        load_program(assemble(text).to_bytes(), prog_type, log_level=0, stats=False,
                     expected_attach_type=attach).close()
    except KernelVerifierError:
        return False
    return True


def both(program: Program, packet: bytes | None = None, ctx: bytes | None = None,
         maps: Sequence[MapDefinition] = ()) -> tuple[ProgramRun, object]:
    """Run ``program`` in the runtime and in the kernel (maps created empty
    on both sides); (ours, the kernel's TestRunResult)."""
    ours = Runtime([program], list(maps)).run(program, packet=packet, ctx=ctx)
    fds = [kernel_create_map(d.map_type, d.key_size, d.value_size, d.max_entries) for d in maps]
    try:
        raw = relocate_map_indices(program.to_bytes(), [m.fd for m in fds]) if fds else program.to_bytes()
        with load_program(raw, program.prog_type) as loaded:
            size_out = len(ctx) if ctx is not None else None
            theirs = loaded.test_run(packet or b"", ctx_in=ctx, ctx_size_out=size_out)
    finally:
        for m in fds:
            m.close()
    return ours, theirs


def assert_same(ours: ProgramRun, theirs, prog_type: str) -> None:  # type: ignore[no-untyped-def]
    assert ours.retval == theirs.retval
    if prog_type == "xdp":
        assert ours.meta + ours.packet == theirs.data_out
    elif get_prog_type(prog_type).packet.l2:
        assert ours.packet == theirs.data_out
    else:
        assert theirs.data_out[:14] == bytes(14)
        assert ours.packet[14:] == theirs.data_out[14:]


# -- which accesses each type allows ------------------------------------------------------
SWEEP = {"socket_filter": 200, "sched_cls": 200, "cgroup_skb": 200, "xdp": 32, "kprobe": 176,
         "raw_tracepoint": 104, "tracepoint": 64}


@pytest.mark.parametrize("type_name", list(SWEEP))
def test_context_access_rules_match_the_kernel(type_name: str) -> None:
    layout = get_prog_type(type_name).context
    differ = []
    for offset in range(SWEEP[type_name]):
        for size, suffix in SIZES.items():
            if offset % size:
                continue  # misaligned: both refuse (checked in test_progtypes_layouts.py)
            for write in (False, True):
                access = (f"mov %r2, 0\nstx{suffix} [%r1+{offset}], %r2" if write
                          else f"ldx{suffix} %r2, [%r1+{offset}]")
                theirs = kernel_loads(access + "\nmov %r0, 1\nexit", type_name)
                try:
                    layout.check(offset, size, write)
                    ours = True
                except ContextAccessError:
                    ours = False
                if ours != theirs:
                    differ.append((offset, size, "write" if write else "read", "kernel allows" if theirs
                                   else "kernel refuses"))
    assert differ == []


def test_xdp_devmap_programs_may_read_egress_ifindex() -> None:
    assert kernel_loads("ldxw %r0, [%r1+20]\nexit", "xdp", "xdp_devmap")
    assert not kernel_loads("ldxw %r0, [%r1+20]\nexit", "xdp")


# -- field values in a test run -----------------------------------------------------------------
FRAMES = {
    "ipv4-host": tcp("192.168.1.10", "10.0.0.1", 1000, 80),
    "ipv6-multicast": b"\xff" * 6 + bytes(6) + b"\x86\xdd" + bytes(range(60)),
    "arp-group": bytes.fromhex("01005e000001") + bytes(6) + b"\x08\x06" + bytes(28),
    "ipx-other": bytes.fromhex("020000000009") + bytes(6) + b"\x00\x20" + b"\xff\xff" + bytes(30),
    "llc-other": bytes.fromhex("020000000009") + bytes(6) + b"\x00\x20" + b"\xaa\xaa" + bytes(30),
}
CTX_INPUTS = {
    "none": None,
    "zero": bytes(192),
    "set": struct.pack("<12I", 0, 0, 7, 0, 0, 0, 0, 0, 5, 3, 0, 0) + struct.pack("<5I", 1, 2, 3, 4, 5)
    + bytes(192 - 68),
}
SKB_FIELDS = {"len": 0, "pkt_type": 4, "mark": 8, "queue_mapping": 12, "protocol": 16, "vlan_present": 20,
              "vlan_tci": 24, "vlan_proto": 28, "priority": 32, "ingress_ifindex": 36, "ifindex": 40,
              "tc_index": 44, "cb1": 52, "hash": 68, "tc_classid": 72, "napi_id": 84, "family": 88,
              "remote_ip4": 92, "local_ip4": 96, "remote_ip6_1": 104, "local_ip6_2": 124, "remote_port": 132,
              "local_port": 136, "wire_len": 160, "gso_segs": 164, "gso_size": 176}


@pytest.mark.parametrize("type_name", ["socket_filter", "sched_cls", "cgroup_skb"])
def test_sk_buff_field_values_match_the_kernel(type_name: str) -> None:
    layout = get_prog_type(type_name).context
    compared = 0
    for name, offset in SKB_FIELDS.items():
        try:
            layout.check(offset, 4, False)
        except ContextAccessError:
            continue
        # The field goes into cb[0], which every type may write and a test run returns.
        program = typed(f"ldxw %r2, [%r1+{offset}]\nstxw [%r1+48], %r2\nmov %r0, 1\nexit", type_name)
        for frame_name, packet in FRAMES.items():
            for ctx_name, ctx in CTX_INPUTS.items():
                if ctx is None:
                    continue  # no context comes back without one (see the no-context test below)
                ours, theirs = both(program, packet, ctx)
                assert ours.ctx[48:52] == theirs.ctx_out[48:52], (name, frame_name, ctx_name)
                compared += 1
    assert compared > 100


@pytest.mark.parametrize("type_name,offset", [("socket_filter", 0), ("socket_filter", 4), ("socket_filter", 16),
                                              ("sched_cls", 160), ("sched_cls", 40), ("sched_cls", 0)])
def test_sk_buff_fields_without_a_context_input(type_name: str, offset: int) -> None:
    program = typed(f"ldxw %r0, [%r1+{offset}]\nexit", type_name)
    for packet in FRAMES.values():
        ours, theirs = both(program, packet)
        assert ours.retval == theirs.retval


def test_tc_context_writes_come_back_like_the_kernels() -> None:
    text = """
        stw [%r1+0], 0
        mov %r2, 11
        stxw [%r1+8], %r2
        stxw [%r1+32], %r2
        stxdw [%r1+56], %r2
        stxb [%r1+48], %r2
        mov %r0, 0
        exit
    """.replace("stw [%r1+0], 0\n", "")
    ours, theirs = both(typed(text, "sched_cls"), FRAMES["ipv4-host"], CTX_INPUTS["set"])
    for offset, size in ((8, 4), (32, 4), (48, 20), (36, 8)):  # mark, priority, cb, ingress/ifindex
        assert ours.ctx[offset:offset + size] == theirs.ctx_out[offset:offset + size], offset


@pytest.mark.parametrize("ctx", [None, struct.pack("<6I", 0, 64, 0, 1, 0, 0), struct.pack("<6I", 8, 72, 0, 0, 0, 0)])
def test_xdp_field_values_match_the_kernel(ctx: bytes | None) -> None:
    packet = bytes(range(8)) + frame(64) if ctx and ctx[0] else frame(64)
    text = """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        ldxw %r4, [%r1+8]
        ldxw %r5, [%r1+12]
        ldxw %r6, [%r1+16]
        mov %r0, %r3
        sub %r0, %r2
        sub %r2, %r4
        lsh %r2, 8
        or %r0, %r2
        lsh %r5, 16
        or %r0, %r5
        lsh %r6, 24
        or %r0, %r6
        exit
    """
    ours, theirs = both(typed(text, "xdp"), packet, ctx)
    assert_same(ours, theirs, "xdp")
    if ctx is not None:
        assert ours.ctx[:8] == theirs.ctx_out[:8]


# -- packet helpers -----------------------------------------------------------------------------
CSUM = """
    mov %r2, {offset}
    lddw %r3, {old}
    lddw %r4, {new}
    lddw %r5, {flags}
    call {helper}
    exit
"""


@settings(max_examples=EXAMPLES, deadline=None)
@given(helper=st.sampled_from(["bpf_l3_csum_replace", "bpf_l4_csum_replace"]),
       offset=st.one_of(st.sampled_from([24, 50, 40, 0, 52, 53, 54, 56]), st.integers(0, 0x10001)),
       size=st.sampled_from([0, 2, 4, 4, 1, 3]),
       extra=st.sampled_from([0, 0, 0x10, 0x20, 0x30, 0x40, 0x60, 0x80, 0x100]),
       old=st.integers(0, (1 << 64) - 1), new=st.integers(0, (1 << 64) - 1), zero_old=st.booleans(),
       zero_field=st.booleans())
def test_csum_replace_matches_the_kernel(helper: str, offset: int, size: int, extra: int, old: int, new: int,
                                         zero_old: bool, zero_field: bool) -> None:
    packet = bytearray(tcp("192.168.1.10", "10.0.0.1", 1000, 80))
    if zero_field and offset + 2 <= len(packet):
        packet[offset:offset + 2] = b"\0\0"
    old = 0 if zero_old or size == 0 else old
    text = CSUM.format(offset=offset, old=old, new=new, flags=size | extra, helper=helper)
    ours, theirs = both(typed(text, "sched_cls"), bytes(packet))
    assert_same(ours, theirs, "sched_cls")


@settings(max_examples=EXAMPLES, deadline=None)
@given(from_size=st.integers(0, 24), to_size=st.integers(0, 24), from_at=st.integers(0, 16),
       to_at=st.integers(0, 16), seed=st.integers(0, (1 << 64) - 1), payload=st.binary(min_size=50, max_size=50))
def test_csum_diff_matches_the_kernel(from_size: int, to_size: int, from_at: int, to_at: int, seed: int,
                                      payload: bytes) -> None:
    text = f"""
        mov %r0, 0
        ldxw %r6, [%r1+0]
        ldxw %r7, [%r1+4]
        mov %r2, %r6
        add %r2, 64
        jgt %r2, %r7, out
        mov %r1, %r6
        add %r1, {from_at}
        mov %r2, {from_size}
        mov %r3, %r6
        add %r3, {to_at + 24}
        mov %r4, {to_size}
        lddw %r5, {seed}
        call bpf_csum_diff
    out:
        exit
    """
    ours, theirs = both(typed(text, "xdp"), frame(14) + payload)
    assert_same(ours, theirs, "xdp")


LOAD_STORE = """
    mov %r6, %r1
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    lddw %r1, 0x8877665544332211
    stxdw [%r10-16], %r1
    mov %r1, %r6
    lddw %r2, {offset}
    mov %r3, %r10
    add %r3, -16
    mov %r4, {length}
    lddw %r5, {flags}
    call {helper}
    mov %r7, %r0
    ldxw %r0, [%r10-16]
    ldxw %r1, [%r10-12]
    xor %r0, %r1
    ldxw %r1, [%r10-8]
    xor %r0, %r1
    lsh %r7, 32
    or %r0, %r7
    exit
"""


@settings(max_examples=EXAMPLES, deadline=None)
@given(prog_type=st.sampled_from(["sched_cls", "socket_filter"]),
       helper=st.sampled_from(["bpf_skb_load_bytes", "bpf_skb_store_bytes"]),
       offset=st.one_of(st.integers(0, 70), st.sampled_from([0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, -1])),
       length=st.integers(1, 16), flags=st.sampled_from([0, 1, 2, 3, 4]))
def test_skb_load_and_store_bytes_match_the_kernel(prog_type: str, helper: str, offset: int, length: int,
                                                   flags: int) -> None:
    if helper == "bpf_skb_store_bytes" and prog_type == "socket_filter":
        prog_type = "sched_cls"  # socket filters may not store
    text = LOAD_STORE.format(offset=offset, length=length, flags=flags, helper=helper)
    if helper == "bpf_skb_load_bytes":
        text = text.replace(f"lddw %r5, {flags}\n", "")
    ours, theirs = both(typed(text, prog_type), udp("192.168.1.10", "10.0.0.1", 5353, 53, bytes(range(20))))
    assert_same(ours, theirs, prog_type)


ADJUST = """
    mov %r6, %r1
    lddw %r2, {first}
    call {helper}
    mov %r7, %r0
    mov %r1, %r6
    lddw %r2, {second}
    call {helper2}
    lsh %r0, 8
    and %r7, 0xff
    or %r0, %r7
    ldxw %r2, [%r6+0]
    ldxw %r3, [%r6+4]
    mov %r4, %r2
    add %r4, 1
    jgt %r4, %r3, out
    stb [%r2+0], 0x77
out:
    exit
"""
ADJUSTERS = ["bpf_xdp_adjust_head", "bpf_xdp_adjust_meta", "bpf_xdp_adjust_tail"]
DELTAS = st.one_of(st.integers(-300, 300), st.sampled_from([-216, -217, -220, 46, 47, 3460, 3461, -46, -47, -4,
                                                            -3, 1 << 31, (1 << 32) - 4, 1 << 40]))


@settings(max_examples=EXAMPLES, deadline=None)
@given(helper=st.sampled_from(ADJUSTERS), helper2=st.sampled_from(ADJUSTERS), first=DELTAS, second=DELTAS,
       size=st.sampled_from([14, 60, 100, 600]))
def test_xdp_adjusters_match_the_kernel(helper: str, helper2: str, first: int, second: int, size: int) -> None:
    text = ADJUST.format(helper=helper, helper2=helper2, first=first, second=second)
    ours, theirs = both(typed(text, "xdp"), frame(size))
    assert_same(ours, theirs, "xdp")


@pytest.mark.parametrize("prog_type", ["xdp", "sched_cls"])
@pytest.mark.parametrize("flags", [0, 1, 2, 3, 1 << 40])
def test_redirect_matches_the_kernel(prog_type: str, flags: int) -> None:
    ours, theirs = both(typed(f"mov %r1, 1\nlddw %r2, {flags}\ncall bpf_redirect\nexit", prog_type), frame())
    assert ours.retval == theirs.retval


# -- tail calls and callbacks -----------------------------------------------------------------------
def kernel_tail_run(text: str, slots: dict[int, str], packet: bytes) -> tuple[int, int]:
    """Load ``text`` (map 0: a 4-slot prog_array holding the program itself
    at ``slots``, map 1: a counter array) and run it; (retval, counter)."""
    jt = kernel_create_map("prog_array", 4, 4, 4)
    counter = kernel_create_map("array", 4, 8, 1)  # direct value access needs a one-entry array
    try:
        raw = relocate_map_indices(assemble(text).to_bytes(), [jt.fd, counter.fd])
        with load_program(raw, "xdp") as loaded:
            for slot in slots:
                jt.update(struct.pack("<I", slot), struct.pack("<i", loaded.fd))
            retval = loaded.test_run(packet).retval
        return retval, struct.unpack("<Q", counter.lookup(bytes(4)))[0]
    finally:
        jt.close()
        counter.close()


TAIL = """
    mov %r6, %r1
    mov %r8, 1
    lddw %r2, map_value 1, 0
    lock add [%r2+0], %r8
    {calls}
    mov %r0, 99
    exit
"""


@pytest.mark.parametrize("slots_called,filled", [([0], {0}), ([1, 0], {0}), ([3], set()), ([4], {0}),
                                                 ([2, 0, 1], {0, 1})])
def test_tail_call_limit_and_fall_through_match_the_kernel(slots_called: list[int], filled: set[int]) -> None:
    calls = "".join(f"mov %r1, %r6\nlddw %r2, map_fd 0\nmov %r3, {slot}\ncall bpf_tail_call\n"
                    for slot in slots_called)
    text = TAIL.format(calls=calls)
    theirs = kernel_tail_run(text, {slot: "p" for slot in filled}, frame())
    maps = (MapDefinition("jt", "prog_array", 4, 4, 4, initial_slots=tuple((s, "p") for s in sorted(filled))),
            MapDefinition("count", "array", 4, 8, 1))
    runtime = Runtime([typed(text, "xdp", name="p", maps=maps)])
    result = runtime.run("p", packet=frame())
    assert (result.retval, struct.unpack("<Q", runtime.maps["count"].lookup(0))[0]) == theirs


CALLBACKS_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct state { __u64 sum; __u64 stop; };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 5);
} values SEC(".maps");

static long add_index(__u64 index, void *data)
{
    struct state *s = data;

    s->sum += index;
    return index >= s->stop;
}

static long bump(void *map, __u32 *key, __u64 *value, void *data)
{
    struct state *s = data;

    *value += *key + 1;
    s->sum += *value;
    return *key >= s->stop;
}

#define LOOP(name, count, flags, stop_at)                                      \
SEC("xdp") int name(struct xdp_md *ctx)                                         \
{                                                                              \
    struct state s = { 0, stop_at };                                           \
    long calls = bpf_loop(count, add_index, &s, flags);                        \
    return (int)((calls & 0xffff) | (s.sum << 16));                            \
}

#define FOR_EACH(name, stop_at)                                                \
SEC("xdp") int name(struct xdp_md *ctx)                                         \
{                                                                              \
    struct state s = { 0, stop_at };                                           \
    long calls = bpf_for_each_map_elem(&values, bump, &s, 0);                  \
    return (int)((calls & 0xff) | (s.sum << 8));                               \
}

LOOP(loop_none, 0, 0, 5)
LOOP(loop_ten, 10, 0, 100)
LOOP(loop_stop, 10, 0, 3)
LOOP(loop_max, 1 << 23, 0, 7)
LOOP(loop_too_many, (1 << 23) + 1, 0, 7)
LOOP(loop_flags, 5, 1, 7)
FOR_EACH(each_first, 0)
FOR_EACH(each_some, 2)
FOR_EACH(each_all, 100)

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def callbacks_object(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Callbacks need BTF for the kernel's verifier: compile them from C."""
    from ebpfvm.elf import load_object

    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is needed to build the callback programs")
    where = tmp_path_factory.mktemp("callbacks")
    source, obj = where / "callbacks.c", where / "callbacks.o"
    source.write_text(CALLBACKS_C)
    arch = f"/usr/include/{platform.machine()}-linux-gnu"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-I{arch}", "-c", str(source), "-o", str(obj)],
                   check=True, capture_output=True)
    return load_object(str(obj))


@pytest.mark.parametrize("program", ["loop_none", "loop_ten", "loop_stop", "loop_max", "loop_too_many",
                                     "loop_flags", "each_first", "each_some", "each_all"])
def test_callbacks_match_the_kernel(callbacks_object, program: str) -> None:  # type: ignore[no-untyped-def]
    from ebpfvm.kernel.objects import test_run_in_kernel

    setup = {b"\x01\0\0\0": struct.pack("<Q", 10), b"\x03\0\0\0": struct.pack("<Q", 30)}
    theirs = test_run_in_kernel(callbacks_object, program, frame(), map_setup={"values": setup})
    runtime = Runtime.for_object(callbacks_object)
    for key, value in setup.items():
        runtime.maps["values"].update(key, value)
    ours = runtime.run(program, packet=frame(), budget=200_000_000 if program == "loop_max" else 1_000_000)
    assert ours.retval == theirs.retval
    assert dict(runtime.maps["values"].items()) == theirs.maps["values"]
