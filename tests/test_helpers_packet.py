"""Packet helpers: the checksum arithmetic (properties against a from-scratch
RFC 1071 checksum) and each helper's bounds, flags and effects, run through
the runtime. The same helpers are compared with the live kernel in
test_runtime_kernel.py."""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ebpfvm.asm import assemble
from ebpfvm.errors import MemoryFault
from ebpfvm.helpers import checksum as cs
from ebpfvm.helpers.packet import HelperUnavailable
from ebpfvm.interp import run as interp_run
from ebpfvm.maps import MapDefinition
from ebpfvm.program import Program
from ebpfvm.runtime import Runtime, run_program

from runtime_support import checksum, frame, tcp, typed, u32, u64

MASK64 = (1 << 64) - 1


def neg(err: int) -> int:
    return -err & MASK64


def le16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "little")


# -- checksum arithmetic --------------------------------------------------------------------
words = st.binary(min_size=20, max_size=60).map(lambda b: b[:len(b) & ~3])


def with_checksum(data: bytes, at: int) -> bytes:
    """``data`` with a correct RFC 1071 checksum stored at ``at``."""
    data = data[:at] + b"\0\0" + data[at + 2:]
    return data[:at] + struct.pack("!H", checksum(data)) + data[at + 2:]


@given(st.binary(max_size=200), st.integers(0, 0xFFFF_FFFF))
def test_csum_partial_is_the_ones_complement_sum(data: bytes, seed: int) -> None:
    folded = cs.csum_fold(cs.csum_partial(data, 0))
    assert folded.to_bytes(2, "little") == checksum(data).to_bytes(2, "big")
    # The seed adds in: folding with a seed equals folding the sum of both.
    with_seed = cs.csum_partial(data, seed)
    assert with_seed % 0xFFFF_FFFF == (cs.csum_partial(data, 0) + seed) % 0xFFFF_FFFF
    assert (with_seed == 0) == (seed == 0 and not any(data))


def test_csum_from32to16_folds_without_complement() -> None:
    assert cs.csum_from32to16(0x0001_FFFF) == 0x0001  # 0xffff + 0x0001 with end-around carry
    assert cs.csum_from32to16(0x1234_0000) == 0x1234
    assert cs.csum_from32to16(0) == 0
    assert cs.csum_from32to16(0xFFFF_FFFF) == 0xFFFF


@given(words, st.data())
def test_csum_replace2_keeps_the_checksum_valid(data: bytes, draw: st.DataObject) -> None:
    at = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    field = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    assume(field != at)
    packet = with_checksum(data, at)
    new = draw.draw(st.integers(0, 0xFFFF))
    updated = cs.csum_replace2(le16(packet, at), le16(packet, field), new)
    out = bytearray(packet)
    out[field:field + 2] = new.to_bytes(2, "little")
    out[at:at + 2] = updated.to_bytes(2, "little")
    assume(any(out[:at] + out[at + 2:]))  # an all-zero header has no valid checksum besides 0xffff
    assert checksum(bytes(out)) == 0


@given(words, st.data())
def test_csum_replace4_and_by_diff_keep_the_checksum_valid(data: bytes, draw: st.DataObject) -> None:
    at = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    field = draw.draw(st.integers(0, len(data) // 4 - 1)) * 4
    assume(not field <= at < field + 4)
    packet = with_checksum(data, at)
    new = draw.draw(st.binary(min_size=4, max_size=4))
    old = packet[field:field + 4]
    by_value = cs.csum_replace4(le16(packet, at), int.from_bytes(old, "little"), int.from_bytes(new, "little"))
    by_diff = cs.csum_replace_by_diff(le16(packet, at), cs.csum_diff(old, new, 0))
    for updated in (by_value, by_diff):
        out = bytearray(packet)
        out[field:field + 4] = new
        out[at:at + 2] = updated.to_bytes(2, "little")
        assume(any(out[:at] + out[at + 2:]))
        assert checksum(bytes(out)) == 0


def test_csum_diff_push_and_pull() -> None:
    data = bytes(range(1, 13))
    pushed = cs.csum_diff(b"", data, 0)
    assert pushed == cs.csum_from32to16(cs.csum_partial(data, 0))
    pulled = cs.csum_diff(data, b"", cs.csum_partial(data, 0))
    assert pulled in (0, 0xFFFF)  # the sum minus itself: ones'-complement zero


# -- running the helpers ------------------------------------------------------------------------
def tc(text: str, packet: bytes, **kwargs):  # type: ignore[no-untyped-def]
    return run_program(typed(text, kwargs.pop("prog_type", "sched_cls")), packet=packet, **kwargs)


LOAD = """
    mov %r6, %r1
    stdw [%r10-8], -1
    mov %r2, {offset}
    mov %r3, %r10
    add %r3, -8
    mov %r4, {length}
    call bpf_skb_load_bytes
    ldxdw %r7, [%r10-8]
    exit
"""


def test_skb_load_bytes_copies_from_data() -> None:
    packet = frame(64)
    result = tc(LOAD.format(offset=12, length=8), packet, trace=True)
    assert result.r0 == 0
    assert result.steps[-1].regs[7] == int.from_bytes(packet[12:20], "little")


def test_skb_load_bytes_of_a_socket_filter_starts_at_the_network_header() -> None:
    packet = frame(64)
    result = tc(LOAD.format(offset=0, length=4), packet, prog_type="socket_filter", trace=True)
    assert result.steps[-1].regs[7] & 0xFFFF_FFFF == int.from_bytes(packet[14:18], "little")


@pytest.mark.parametrize("offset,length,r0", [(56, 8, 0), (57, 8, neg(errno.EFAULT)), (64, 1, neg(errno.EFAULT)),
                                              (-1, 4, neg(errno.EFAULT))])
def test_skb_load_bytes_bounds_and_zeroing(offset: int, length: int, r0: int) -> None:
    result = tc(LOAD.format(offset=offset, length=length), frame(64), trace=True)
    assert result.r0 == r0
    if r0:  # the destination is cleared on failure
        assert result.steps[-1].regs[7] == (1 << 64) - (1 << (8 * length))


STORE = """
    stw [%r10-4], 0x44332211
    mov %r2, {offset}
    mov %r3, %r10
    add %r3, -4
    mov %r4, {length}
    mov %r5, {flags}
    call bpf_skb_store_bytes
    exit
"""


@pytest.mark.parametrize("prog_type,offset,at", [("sched_cls", 0, 0), ("sched_cls", 60, 60),
                                                 ("socket_filter", 0, 14)])
def test_skb_store_bytes_writes_the_packet(prog_type: str, offset: int, at: int) -> None:
    result = tc(STORE.format(offset=offset, length=4, flags=0), frame(64), prog_type=prog_type)
    assert result.r0 == 0
    expected = bytearray(frame(64))
    expected[at:at + 4] = bytes([0x11, 0x22, 0x33, 0x44])
    assert result.packet == bytes(expected)


@pytest.mark.parametrize("offset,flags,r0", [(61, 0, neg(errno.EFAULT)), (-1, 0, neg(errno.EFAULT)),
                                             (0, 4, neg(errno.EINVAL)), (0, 3, 0)])
def test_skb_store_bytes_errors_leave_the_packet(offset: int, flags: int, r0: int) -> None:
    result = tc(STORE.format(offset=offset, length=4, flags=flags), frame(64))
    assert result.r0 == r0
    if r0:
        assert result.packet == frame(64)


CSUM = """
    mov %r2, {offset}
    lddw %r3, {old}
    lddw %r4, {new}
    mov %r5, {flags}
    call {helper}
    exit
"""


def rewrite_daddr(packet: bytes, new: bytes, helper: str, flags: int, offset: int) -> tuple[int, bytes]:
    old = packet[30:34]
    text = CSUM.format(offset=offset, old=int.from_bytes(old, "little"), new=int.from_bytes(new, "little"),
                       flags=flags, helper=helper)
    result = tc(text, packet)
    return result.r0, result.packet


def test_l3_and_l4_csum_replace_fix_both_checksums() -> None:
    packet = tcp("192.168.1.10", "10.0.0.1", 1000, 80)
    new = bytes([10, 0, 0, 2])
    r0, packet = rewrite_daddr(packet, new, "bpf_l3_csum_replace", 4, 24)
    assert r0 == 0
    r0, packet = rewrite_daddr(packet, new, "bpf_l4_csum_replace", 4 | 0x10, 50)
    assert r0 == 0
    packet = packet[:30] + new + packet[34:]
    assert packet == tcp("192.168.1.10", "10.0.0.2", 1000, 80)


@pytest.mark.parametrize("helper,offset,flags,r0", [
    ("bpf_l3_csum_replace", 25, 4, neg(errno.EFAULT)),     # odd offset
    ("bpf_l3_csum_replace", 0x10000, 4, neg(errno.EFAULT)),
    ("bpf_l3_csum_replace", 53, 2, neg(errno.EFAULT)),      # odd
    ("bpf_l3_csum_replace", 54, 2, neg(errno.EFAULT)),      # the field would end past the packet
    ("bpf_l3_csum_replace", 24, 3, neg(errno.EINVAL)),      # no such field size
    ("bpf_l3_csum_replace", 24, 0x14, neg(errno.EINVAL)),   # l4 flag
    ("bpf_l3_csum_replace", 24, 0, neg(errno.EINVAL)),      # by diff, but from != 0
    ("bpf_l4_csum_replace", 50, 0x100 | 4, neg(errno.EINVAL)),
    ("bpf_l4_csum_replace", 50, 0xF0 | 4, 0),
])
def test_csum_replace_errors(helper: str, offset: int, flags: int, r0: int) -> None:
    packet = tcp("192.168.1.10", "10.0.0.1", 1000, 80)
    got, out = rewrite_daddr(packet, bytes(4), helper, flags, offset)
    assert got == r0
    if r0:
        assert out == packet


def test_l4_csum_replace_mangled_zero() -> None:
    def update(checksum_field: int, old: int, new: int, flags: int) -> int:
        packet = bytearray(frame(64))
        packet[40:42] = checksum_field.to_bytes(2, "little")
        text = CSUM.format(offset=40, old=old, new=new, flags=flags | 2, helper="bpf_l4_csum_replace")
        result = tc(text, bytes(packet))
        assert result.r0 == 0
        return le16(result.packet, 40)

    assert cs.csum_replace4(5, 0, 5) == 0  # an update whose result is 0 ...
    assert update(5, 0, 5, 0) == 0
    assert update(5, 0, 5, 0x20) == 0xFFFF  # ... is written as 0xffff with BPF_F_MARK_MANGLED_0
    assert update(0, 0, 5, 0x20) == 0  # a zero checksum (UDP: none) is left alone
    assert update(0, 0, 0, 0x60) == 0xFFFF  # unless BPF_F_MARK_ENFORCE
    assert update(0, 0, 5, 0x60) == cs.csum_replace4(0, 0, 5)


def test_csum_diff_over_packet_memory() -> None:
    packet = frame(64)
    text = """
        ldxw %r2, [%r1+0]
        mov %r1, %r2
        mov %r3, %r2
        add %r3, 20
        mov %r2, 8
        mov %r4, 12
        mov %r5, 7
        call bpf_csum_diff
        exit
    """
    result = run_program(typed(text, "xdp"), packet=packet)
    assert result.r0 == cs.csum_diff(packet[:8], packet[20:32], 7)
    assert result.r0 <= 0xFFFF


# -- XDP adjusters ------------------------------------------------------------------------------
ADJUST = """
    mov %r6, %r1
    mov %r2, {delta}
    call {helper}
    mov %r7, %r0
    ldxw %r2, [%r6+0]
    ldxw %r3, [%r6+4]
    ldxw %r4, [%r6+8]
    mov %r0, %r7
    exit
"""


def adjust(helper: str, delta: int, packet: bytes | None = None, **kwargs):  # type: ignore[no-untyped-def]
    result = run_program(typed(ADJUST.format(helper=helper, delta=delta), "xdp"), packet=packet or frame(60),
                         trace=True, **kwargs)
    regs = result.steps[-1].regs
    return result, regs[3] - regs[2], regs[2] - regs[4]  # packet length, metadata length


@pytest.mark.parametrize("delta,r0,length", [(-4, 0, 64), (14, 0, 46), (46, 0, 14), (47, neg(errno.EINVAL), 60),
                                             (-216, 0, 276), (-217, neg(errno.EINVAL), 60)])
def test_xdp_adjust_head_limits(delta: int, r0: int, length: int) -> None:
    result, got_length, _ = adjust("bpf_xdp_adjust_head", delta)
    assert (result.r0, got_length, len(result.packet)) == (r0, length, length)
    if delta < 0 and r0 == 0:
        assert result.packet == bytes(-delta) + frame(60)  # the headroom is zeroed
    elif r0 == 0:
        assert result.packet == frame(60)[delta:]


def test_xdp_adjust_head_back_and_forth_keeps_the_bytes() -> None:
    text = """
        mov %r6, %r1
        mov %r2, 20
        call bpf_xdp_adjust_head
        mov %r1, %r6
        mov %r2, -20
        call bpf_xdp_adjust_head
        exit
    """
    result = run_program(typed(text, "xdp"), packet=frame(60))
    assert result.r0 == 0 and result.packet == frame(60)


def test_old_packet_pointers_fault_after_a_shrink() -> None:
    text = """
        mov %r6, %r1
        ldxw %r7, [%r6+0]
        mov %r2, 4
        call bpf_xdp_adjust_head
        ldxb %r0, [%r7+0]
        exit
    """
    with pytest.raises(MemoryFault) as info:
        run_program(typed(text, "xdp"), packet=frame(60))
    assert info.value.nearest.startswith("packet")


@pytest.mark.parametrize("delta,r0,meta", [(-4, 0, 4), (-216, 0, 216), (-220, neg(errno.EINVAL), 0),
                                           (-3, neg(errno.EACCES), 0), (4, neg(errno.EINVAL), 0)])
def test_xdp_adjust_meta_limits(delta: int, r0: int, meta: int) -> None:
    result, length, got_meta = adjust("bpf_xdp_adjust_meta", delta)
    assert (result.r0, got_meta, len(result.meta), length) == (r0, meta, meta, 60)


def test_xdp_adjust_head_moves_the_metadata_along() -> None:
    text = """
        mov %r6, %r1
        mov %r2, -8
        call bpf_xdp_adjust_meta
        ldxw %r2, [%r6+8]
        ldxw %r3, [%r6+0]
        jgt %r2, %r3, out
        stdw [%r2+0], 0x5a5a
        mov %r1, %r6
        mov %r2, 10
        call bpf_xdp_adjust_head
    out:
        exit
    """
    result = run_program(typed(text, "xdp"), packet=frame(60))
    assert result.r0 == 0
    assert result.meta == struct.pack("<Q", 0x5A5A)
    assert result.packet == frame(60)[10:]


@pytest.mark.parametrize("delta,r0,length", [(100, 0, 160), (3460, 0, 3520), (3461, neg(errno.EINVAL), 60),
                                             (-46, 0, 14), (-47, neg(errno.EINVAL), 60)])
def test_xdp_adjust_tail_limits(delta: int, r0: int, length: int) -> None:
    result, got_length, _ = adjust("bpf_xdp_adjust_tail", delta)
    assert (result.r0, got_length, len(result.packet)) == (r0, length, length)
    if delta > 0 and r0 == 0:
        assert result.packet == frame(60) + bytes(delta)


# -- redirect -----------------------------------------------------------------------------------
@pytest.mark.parametrize("prog_type,flags,r0,action", [
    ("xdp", 0, 4, "XDP_REDIRECT"), ("xdp", 1, 0, "XDP_ABORTED"),
    ("sched_cls", 0, 7, "TC_ACT_REDIRECT"), ("sched_cls", 1, 7, "TC_ACT_REDIRECT"), ("sched_cls", 2, 2, "TC_ACT_SHOT"),
])
def test_redirect(prog_type: str, flags: int, r0: int, action: str) -> None:
    result = run_program(typed(f"mov %r1, 5\nmov %r2, {flags}\ncall bpf_redirect\nexit", prog_type), packet=frame())
    assert (result.r0, result.action) == (r0, action)
    if r0 in (4, 7):
        assert (result.redirect.ifindex, result.redirect.flags, result.redirect.map) == (5, flags, None)
    else:
        assert result.redirect is None


@pytest.mark.parametrize("key,flags,r0", [(3, 0, 4), (4, 2, 2), (4, 1, 1), (3, 8, 0), ((1 << 32) | 3, 0, 4)])
def test_redirect_map(key: int, flags: int, r0: int) -> None:
    targets = MapDefinition("targets", "hash", 4, 4, 8)
    program = typed(f"lddw %r1, map_fd 0\nlddw %r2, {key}\nmov %r3, {flags}\ncall bpf_redirect_map\nexit", "xdp",
                    maps=(targets,))
    runtime = Runtime([program])
    runtime.maps["targets"].update(u32(3), u32(7))
    result = runtime.run(program, packet=frame())
    assert result.r0 == r0
    assert (result.redirect is not None) == (r0 == 4)
    if r0 == 4:
        assert (result.redirect.map, result.redirect.ifindex) == ("targets", 3)


def test_packet_helpers_need_a_runtime() -> None:
    program = assemble("mov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 4\ncall bpf_skb_load_bytes\nexit")
    with pytest.raises(HelperUnavailable, match="bpf_skb_load_bytes: needs a program context"):
        interp_run(program, mem=bytes(8))
    with pytest.raises(HelperUnavailable, match="this run has no packet"):
        run_program(Program(program.instructions, prog_type="kprobe"))


def test_map_values_and_counters_survive_between_runs() -> None:
    counter = MapDefinition("n", "array", 4, 8, 1)
    program = typed("lddw %r1, map_value 0, 0\nlock add [%r1+0], %r10\nmov %r0, 2\nexit", "xdp", maps=(counter,))
    runtime = Runtime([program])
    runtime.run(program, packet=frame())
    runtime.run(program, packet=frame())
    assert runtime.maps["n"].lookup(0) != u64(0)
