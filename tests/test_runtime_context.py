"""Programs reading and writing their context through the runtime: the
layout's rules at run time, the rewritten packet pointers, direct packet
access, verdicts."""

from __future__ import annotations

import struct

import pytest

from ebpfvm.errors import MemoryFault
from ebpfvm.memory import PACKET_BASE
from ebpfvm.progtypes import ContextAccessError
from ebpfvm.runtime import run_program

from runtime_support import frame, typed


def run(text: str, prog_type: str | None, **kwargs):  # type: ignore[no-untyped-def]
    return run_program(typed(text, prog_type, expected_attach_type=kwargs.pop("attach", None)), **kwargs)


# -- xdp --------------------------------------------------------------------------------------
def test_xdp_data_pointers_are_64_bit_and_bound_the_packet() -> None:
    # r0 = data_end - data; r2 = data_meta - data (0: no metadata)
    text = """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        ldxw %r4, [%r1+8]
        mov %r0, %r3
        sub %r0, %r2
        sub %r4, %r2
        mov %r6, %r2
        exit
    """
    result = run(text, "xdp", packet=frame(60), trace=True)
    assert result.r0 == 60
    regs = result.steps[-1].regs
    assert regs[4] == 0
    assert regs[6] == PACKET_BASE + 256  # XDP_PACKET_HEADROOM in front of the packet


def test_xdp_reads_packet_bytes_through_data() -> None:
    text = """
        ldxw %r2, [%r1+0]
        ldxh %r0, [%r2+12]
        be16 %r0
        exit
    """
    assert run(text, "xdp", packet=frame(60, ethertype=0x86DD)).r0 == 0x86DD


def test_xdp_write_through_data_shows_in_the_packet() -> None:
    text = """
        ldxw %r2, [%r1+0]
        stw [%r2+0], 0x04030201
        mov %r0, 3
        exit
    """
    result = run(text, "xdp", packet=frame(60))
    assert result.action == "XDP_TX"
    assert result.packet == bytes([1, 2, 3, 4]) + frame(60)[4:]


def test_xdp_read_past_data_end_faults() -> None:
    text = """
        ldxw %r2, [%r1+0]
        ldxb %r0, [%r2+60]
        exit
    """
    with pytest.raises(MemoryFault) as info:
        run(text, "xdp", packet=frame(60))
    assert info.value.nearest.startswith("packet")
    assert info.value.pc == 1


def test_xdp_read_of_headroom_faults() -> None:
    text = """
        ldxw %r2, [%r1+0]
        ldxb %r0, [%r2-1]
        exit
    """
    with pytest.raises(MemoryFault):
        run(text, "xdp", packet=frame(60))


def test_xdp_queue_fields() -> None:
    assert run("ldxw %r0, [%r1+12]\nexit", "xdp", packet=frame()).r0 == 1
    ctx = struct.pack("<6I", 0, 64, 0, 7, 3, 0)
    assert run("ldxw %r0, [%r1+16]\nexit", "xdp", packet=frame(), ctx=ctx).r0 == 3
    assert run("ldxw %r0, [%r1+12]\nexit", "xdp", packet=frame(), ctx=ctx).r0 == 7


def test_xdp_egress_ifindex_faults_with_the_field_name() -> None:
    with pytest.raises(ContextAccessError) as info:
        run("mov %r0, 0\nldxdw %r0, [%r1+20]\nexit", "xdp", packet=frame())
    assert info.value.pc == 1
    assert "invalid access to xdp_md at offset 20 size 8 (read of egress_ifindex" in str(info.value)
    assert run("ldxw %r0, [%r1+20]\nexit", "xdp", packet=frame(), attach="xdp_devmap").r0 == 0


def test_xdp_context_writes_fault() -> None:
    with pytest.raises(ContextAccessError, match="write of ingress_ifindex: read-only"):
        run("stw [%r1+12], 5\nmov %r0, 2\nexit", "xdp", packet=frame())


def test_xdp_metadata_from_context_input() -> None:
    text = """
        ldxw %r2, [%r1+8]
        ldxw %r3, [%r1+0]
        ldxw %r0, [%r2+0]
        mov %r4, %r3
        sub %r4, %r2
        exit
    """
    packet = struct.pack("<I", 0xCAFE) + bytes(4) + frame(60)
    result = run(text, "xdp", packet=packet, ctx=struct.pack("<6I", 8, 68, 0, 0, 0, 0), trace=True)
    assert result.r0 == 0xCAFE
    assert result.steps[-1].regs[4] == 8
    assert result.meta == packet[:8] and result.packet == frame(60)
    assert struct.unpack("<3I", result.ctx[:12]) == (8, 68, 0)  # as the kernel's ctx_out: offsets from data_meta


@pytest.mark.parametrize("r0,action", [(0, "XDP_ABORTED"), (1, "XDP_DROP"), (2, "XDP_PASS"), (3, "XDP_TX"),
                                       (4, "XDP_REDIRECT"), (5, None)])
def test_xdp_verdicts(r0: int, action: str | None) -> None:
    result = run(f"mov %r0, {r0}\nexit", "xdp", packet=frame())
    assert (result.r0, result.retval, result.action) == (r0, r0, action)


# -- __sk_buff ------------------------------------------------------------------------------
def test_socket_filter_reads_len_protocol_and_ld_abs_sees_l3() -> None:
    text = """
        ldxw %r6, [%r1+0]
        ldxh %r7, [%r1+16]
        ldabsb 9
        exit
    """
    packet = frame(64)
    result = run(text, "socket_filter", packet=packet, trace=True)
    regs = result.steps[-1].regs
    assert regs[6] == 50 and regs[7] == 0x0008
    assert result.r0 == packet[14 + 9]
    assert result.packet == packet  # the Ethernet header comes back as given


def test_socket_filter_narrow_read() -> None:
    assert run("ldxb %r0, [%r1+1]\nexit", "socket_filter", packet=frame(14 + 300)).r0 == 300 >> 8


@pytest.mark.parametrize("text,message", [
    ("ldxw %r0, [%r1+76]\nexit", "read of data: not accessible"),
    ("stw [%r1+8], 1\nmov %r0, 0\nexit", "write of mark: read-only"),
    ("ldxdw %r0, [%r1+0]\nexit", "read of len: size must be 1, 2 or 4"),
    ("ldxw %r0, [%r1+182]\nexit", "padding"),
])
def test_socket_filter_refusals(text: str, message: str) -> None:
    with pytest.raises(ContextAccessError, match=message):
        run(text, "socket_filter", packet=frame())


def test_socket_filter_writes_cb() -> None:
    result = run("stdw [%r1+48], -1\nstb [%r1+66], 7\nmov %r0, 0\nexit", "socket_filter", packet=frame())
    assert result.ctx[48:68] == b"\xff" * 8 + bytes(10) + b"\x07\x00"


def test_tc_direct_packet_access_and_writes() -> None:
    text = """
        ldxw %r2, [%r1+76]
        ldxw %r3, [%r1+80]
        ldxw %r4, [%r1+140]
        mov %r5, %r3
        sub %r5, %r2
        stxw [%r1+8], %r5
        stw [%r1+44], 9
        stb [%r2+0], 0xaa
        mov %r0, -1
        exit
    """
    result = run(text, "sched_cls", packet=frame(64), trace=True)
    assert result.action == "TC_ACT_UNSPEC"
    assert struct.unpack_from("<I", result.ctx, 8)[0] == 64  # mark = data_end - data
    assert struct.unpack_from("<I", result.ctx, 44)[0] == 9
    assert result.steps[-1].regs[4] == result.steps[-1].regs[2]  # data_meta == data
    assert result.packet == b"\xaa" + frame(64)[1:]


def test_atomics_on_the_context_fault() -> None:
    with pytest.raises(MemoryFault, match="ctx .*read-only"):
        run("mov %r2, 1\nlock add32 [%r1+8], %r2\nmov %r0, 0\nexit", "sched_cls", packet=frame())


def test_tc_sk_reads_as_null() -> None:
    assert run("ldxdw %r0, [%r1+168]\nexit", "sched_cls", packet=frame()).r0 == 0


def test_cgroup_skb_socket_fields() -> None:
    packet = bytearray(frame(64))
    packet[14 + 12:14 + 20] = bytes([10, 0, 0, 1, 10, 0, 0, 2])
    text = "ldxw %r0, [%r1+92]\nexit"  # remote_ip4 = the destination
    assert run(text, "cgroup_skb", packet=bytes(packet)).r0 == int.from_bytes(bytes([10, 0, 0, 2]), "little")


def test_ctx_access_past_the_struct() -> None:
    with pytest.raises(ContextAccessError, match="offset 192 size 4 \\(read: outside the 192-byte struct"):
        run("ldxw %r0, [%r1+192]\nexit", "sched_cls", packet=frame())
    with pytest.raises(MemoryFault) as info:  # far away: not the context any more
        run("ldxw %r0, [%r1+8192]\nexit", "sched_cls", packet=frame())
    assert info.value.nearest.startswith("ctx")


# -- tracing ------------------------------------------------------------------------------------
def test_kprobe_reads_pt_regs() -> None:
    regs = bytearray(168)
    struct.pack_into("<Q", regs, 112, 0x1122334455667788)  # di: the first argument
    assert run("ldxdw %r0, [%r1+112]\nexit", "kprobe", ctx=bytes(regs)).r0 == 0x1122334455667788
    assert run("ldxw %r0, [%r1+116]\nexit", "kprobe", ctx=bytes(regs)).r0 == 0x11223344


def test_tracepoint_common_fields_are_off_limits() -> None:
    record = bytes(range(32))
    assert run("ldxw %r0, [%r1+8]\nexit", "tracepoint", ctx=record).r0 == 0x0B0A0908
    with pytest.raises(ContextAccessError, match="offset 0 size 4"):
        run("ldxw %r0, [%r1+0]\nexit", "tracepoint", ctx=record)


def test_raw_tracepoint_args() -> None:
    args = struct.pack("<3Q", 1, 2, 3)
    assert run("ldxdw %r0, [%r1+16]\nexit", "raw_tracepoint", ctx=args).r0 == 3
    with pytest.raises(ContextAccessError, match="write of args"):
        run("stdw [%r1+0], 1\nexit", "raw_tracepoint", ctx=args)


# -- no program type -----------------------------------------------------------------------------
def test_untyped_program_gets_plain_memory_like_the_interpreter() -> None:
    text = """
        ldxw %r0, [%r1+0]
        add %r0, %r2
        stw [%r1+0], 9
        exit
    """
    result = run(text, None, ctx=bytes([1, 0, 0, 0]))
    assert result.r0 == 5 and result.ctx == bytes([9, 0, 0, 0])
    assert result.action is None and result.packet is None
