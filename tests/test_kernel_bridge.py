"""The kernel bridge against the live bpf(2) syscall (skipped without one,
see tests/kernel_support.py), plus its kernel-free parts.

Programs are hand-encoded here so these tests depend on nothing but the
bridge itself.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import pickle
import signal
import struct
import time

import pytest

import ebpfvm.kernel as k
from ebpfvm.errors import DecodeError, EbpfvmError, UserInputError
from ebpfvm.kernel import constants as C
from ebpfvm.kernel import isolation
from ebpfvm.kernel import syscall as sc

try:  # tests/ on sys.path (rootdir-less layout) or tests as a package
    from kernel_support import kernel, require_kernel
except ImportError:  # pragma: no cover
    from tests.kernel_support import kernel, require_kernel  # noqa: F401


def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, dst | (src << 4), off, imm)


def lddw(dst: int, imm: int, src: int = 0) -> bytes:
    return insn(0x18, dst, src, 0, imm) + insn(0, 0, 0, 0, 0)


EXIT = insn(0x95)
MOV42 = bytes.fromhex("b7000000 2a000000".replace(" ", ""))
RET42 = MOV42 + EXIT
RET0 = insn(0xB7, 0, imm=0) + EXIT
NO_R0 = EXIT  # exit with r0 never written: "R0 !read_ok"
PACKET = bytes(range(64))


def map_increment_prog(map_imm: int, src: int) -> bytes:
    """r0 = old value of map[0] (u64); map[0] += 1.  The lddw refers to the
    map as ``map_imm`` with pseudo source ``src``."""
    return b"".join([
        insn(0x62, 10, 0, -4, 0),          # *(u32 *)(r10 - 4) = 0
        insn(0xBF, 2, 10),                 # r2 = r10
        insn(0x07, 2, imm=-4),             # r2 += -4
        lddw(1, map_imm, src),             # r1 = map
        insn(0x85, imm=1),                 # call bpf_map_lookup_elem
        insn(0x15, 0, 0, 6, 0),            # if r0 == 0 goto +6 (to r0 = -1)
        insn(0x79, 1, 0, 0),               # r1 = *(u64 *)(r0 + 0)
        insn(0xBF, 2, 1),                  # r2 = r1
        insn(0x07, 2, imm=1),              # r2 += 1
        insn(0x7B, 0, 2, 0),               # *(u64 *)(r0 + 0) = r2
        insn(0xBF, 0, 1),                  # r0 = r1
        EXIT,
        insn(0xB7, 0, imm=-1),             # r0 = -1 (lookup failed)
        EXIT,
    ])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- kernel-free --------------------------------------------------------------


def test_attr_layouts_match_uapi() -> None:
    assert ctypes.sizeof(sc.ProgLoadAttr) == 152
    assert sc.ProgLoadAttr.log_buf.offset == 32
    assert sc.ProgLoadAttr.prog_name.offset == 48
    assert sc.ProgLoadAttr.expected_attach_type.offset == 68
    assert sc.ProgLoadAttr.fd_array.offset == 120
    assert sc.ProgLoadAttr.log_true_size.offset == 140
    assert ctypes.sizeof(sc.TestRunAttr) == 80
    assert sc.TestRunAttr.ctx_in.offset == 48
    assert sc.TestRunAttr.flags.offset == 64
    assert ctypes.sizeof(sc.MapElemAttr) == 32
    assert sc.MapElemAttr.key.offset == 8
    assert sc.MapCreateAttr.map_name.offset == 28
    assert sc.MapCreateAttr.map_extra.offset == 64
    assert ctypes.sizeof(sc.ObjInfoAttr) == 16
    assert sc.ProgInfoStruct.name.offset == 64
    assert sc.ProgInfoStruct.verified_insns.offset == 216
    assert ctypes.sizeof(sc.ProgInfoStruct) == 232
    assert sc.MapInfoStruct.map_extra.offset == 80


def test_prog_flags_match_uapi() -> None:
    assert (C.BPF_F_STRICT_ALIGNMENT, C.BPF_F_ANY_ALIGNMENT, C.BPF_F_TEST_RND_HI32,
            C.BPF_F_TEST_STATE_FREQ, C.BPF_F_SLEEPABLE, C.BPF_F_XDP_HAS_FRAGS,
            C.BPF_F_XDP_DEV_BOUND_ONLY, C.BPF_F_TEST_REG_INVARIANTS) == (1, 2, 4, 8, 16, 32, 64, 128)


def test_name_lookups() -> None:
    assert C.prog_type_number("socket_filter") == 1
    assert C.prog_type_number("XDP") == 6
    assert C.prog_type_number("BPF_PROG_TYPE_SCHED_CLS") == 3
    assert C.prog_type_number("tracing") == 26
    assert C.prog_type_number("syscall") == 31
    assert C.prog_type_number(17) == 17
    assert C.prog_type_name(6) == "xdp"
    assert C.prog_type_name(999) == "unknown(999)"
    assert C.map_type_number("hash") == C.BPF_MAP_TYPE_HASH == 1
    assert C.map_type_number("arena") == 33
    assert C.attach_type_number("cgroup_inet_ingress") == 0
    assert C.attach_type_number("BPF_TRACE_FENTRY") == 24
    assert C.attach_type_name(37) == "xdp"
    # the generated module constants agree with the spelled-out ones
    assert C.BPF_PROG_TYPE_LSM == 29  # type: ignore[attr-defined]
    assert C.BPF_CGROUP_INET_EGRESS == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["nonsense", "", -1, 1 << 32, True])
def test_unknown_prog_type_is_argument_error(bad: object) -> None:
    with pytest.raises(k.KernelArgumentError) as info:
        C.prog_type_number(bad)  # type: ignore[arg-type]
    assert info.value.argument == "prog_type"
    assert isinstance(info.value, UserInputError) and isinstance(info.value, ValueError)


def test_errors_carry_data_and_pickle() -> None:
    stats = k.parse_stats("processed 1 insns (limit 1000000) max_states_per_insn 0 "
                          "total_states 0 peak_states 0 mark_read 0\n")
    errs = [
        k.KernelVerifierError(errno.EACCES, "0: (95) exit\nR0 !read_ok\n", "R0 !read_ok", stats),
        k.KernelError(errno.EPERM, "BPF_MAP_CREATE"),
        k.KernelUnavailable("not Linux"),
        k.KernelArgumentError("key", "3 bytes"),
        k.ChildCrashed(signal.SIGSEGV, None),
        k.ChildError("Foo", "bar", "tb"),
    ]
    for e in errs:
        assert isinstance(e, EbpfvmError)
        assert "\n" not in str(e)
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)
    v = errs[0]
    assert str(v) == "BPF_PROG_LOAD failed: EACCES: R0 !read_ok"
    assert (v.errno, v.command, v.error_line, v.stats) == (errno.EACCES, "BPF_PROG_LOAD", "R0 !read_ok", stats)
    assert str(errs[4]) == "child killed by SIGSEGV (11)"


def test_availability_is_truthy_and_cached() -> None:
    assert bool(k.Availability(True)) and not k.Availability(False, "nope")
    first = k.available()
    assert k.available() is first
    assert isinstance(first.reason, str)
    assert bool(first) == first.ok


def test_malformed_instruction_bytes() -> None:
    with pytest.raises(DecodeError):
        k.load_program(RET42[:-3])
    with pytest.raises(DecodeError):
        k.load_program(b"")


def test_relocate_map_indices() -> None:
    prog = map_increment_prog(1, C.BPF_PSEUDO_MAP_FD)
    out = k.relocate_map_indices(prog, [100, 200])
    assert struct.unpack_from("<i", out, 3 * 8 + 4)[0] == 200
    assert out[:24] == prog[:24] and out[32:] == prog[32:]
    # BPF_PSEUDO_MAP_IDX is left to the kernel's fd_array
    idx = map_increment_prog(1, C.BPF_PSEUDO_MAP_IDX)
    assert k.relocate_map_indices(idx, [100, 200]) == idx
    with pytest.raises(k.KernelArgumentError):
        k.relocate_map_indices(prog, [100])


# --- isolation (needs fork, not bpf) -----------------------------------------


def _segfault_self() -> None:
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)  # no faulthandler dump
    os.kill(os.getpid(), signal.SIGSEGV)


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def _raise_unpicklable() -> None:
    raise Unpicklable(1, 2)


def test_child_result_roundtrip() -> None:
    assert k.run_in_child(lambda x, y=0: x * 2 + y, 20, y=2) == 42
    big = k.run_in_child(lambda: os.urandom(1 << 20) * 3)  # bigger than a pipe buffer
    assert len(big) == 3 << 20


def test_child_signal_is_reported() -> None:
    with pytest.raises(k.ChildCrashed) as info:
        k.run_in_child(_segfault_self)
    assert info.value.signal == signal.SIGSEGV
    assert info.value.exit_status is None and not info.value.timed_out


def test_child_exit_status_is_reported() -> None:
    with pytest.raises(k.ChildCrashed) as info:
        k.run_in_child(os._exit, 3)
    assert info.value.exit_status == 3 and info.value.signal is None


def test_child_timeout_kills() -> None:
    start = time.monotonic()
    with pytest.raises(k.ChildCrashed) as info:
        k.run_in_child(time.sleep, 60, timeout=0.5)
    assert info.value.timed_out and info.value.reaped
    assert time.monotonic() - start < 10


def test_child_exceptions_come_back() -> None:
    with pytest.raises(k.KernelError) as info:
        k.run_in_child(lambda: (_ for _ in ()).throw(k.KernelError(errno.EPERM, "BPF_PROG_LOAD")))
    assert info.value.errno == errno.EPERM
    with pytest.raises(k.ChildError) as info2:
        k.run_in_child(_raise_unpicklable)
    assert info2.value.type_name.endswith("Unpicklable") and "_raise_unpicklable" in info2.value.child_traceback


def test_isolated_crash_is_an_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fork copies the patched module, so the child "crashes while loading"
    # the way an Oops would end it -- without touching the real kernel bug.
    def crash(*args: object, **kwargs: object) -> None:
        _segfault_self()

    monkeypatch.setattr(isolation, "load_program", crash)
    out = k.load_and_run_isolated(RET42, "xdp", PACKET)
    assert isinstance(out, k.Crashed) and out.kind == "crashed"
    assert out.signal == signal.SIGSEGV and not out.timed_out


# --- live kernel --------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.parametrize("prog_type", ["socket_filter", "xdp", "sched_cls", C.BPF_PROG_TYPE_XDP])
def test_load_and_run_constant(kernel: k.Availability, prog_type: str | int) -> None:
    with k.load_program(RET42, prog_type, name="ret42") as prog:
        assert prog.fd >= 0 and prog.stats is not None
        assert prog.stats.insns_processed == 2
        assert "processed 2 insns" in prog.log
        result = prog.test_run(PACKET)
        assert result.retval == 42
        if prog_type == "socket_filter":
            # Not an L2 program type: the kernel pulls the Ethernet header
            # before the run and pushes back a zeroed one for data_out.
            assert result.data_out == bytes(14) + PACKET[14:]
        else:
            assert result.data_out == PACKET
        assert result.duration_ns >= 0
        info = prog.info()
        assert info.type == C.prog_type_number(prog_type)
        assert info.xlated_prog_len == 16 and info.verified_insns == 2
        assert info.name == "ret42" and info.gpl_compatible
        assert prog.xlated() == RET42
    assert prog.closed


@pytest.mark.kernel
def test_context_reads(kernel: k.Availability) -> None:
    skb_len = insn(0x61, 0, 1, 0) + EXIT  # r0 = ((struct __sk_buff *)r1)->len
    with k.load_program(skb_len, "socket_filter") as prog:
        # skb->len excludes the Ethernet header for socket filters
        assert prog.test_run(PACKET).retval == len(PACKET) - 14
    with k.load_program(skb_len, "sched_cls") as prog:
        assert prog.test_run(PACKET).retval == len(PACKET)
    xdp_len = b"".join([
        insn(0x61, 2, 1, 0),   # r2 = ctx->data
        insn(0x61, 0, 1, 4),   # r0 = ctx->data_end
        insn(0x1F, 0, 2),      # r0 -= r2
        EXIT,
    ])
    with k.load_program(xdp_len, "xdp") as prog:
        assert prog.test_run(PACKET).retval == len(PACKET)


@pytest.mark.kernel
def test_xdp_writes_packet(kernel: k.Availability) -> None:
    prog_bytes = b"".join([
        insn(0x61, 2, 1, 0),          # r2 = data
        insn(0x61, 3, 1, 4),          # r3 = data_end
        insn(0xBF, 4, 2),             # r4 = r2
        insn(0x07, 4, imm=1),         # r4 += 1
        insn(0x2D, 4, 3, 1),          # if r4 > r3 goto +1
        insn(0x72, 2, 0, 0, 0xAB),    # *(u8 *)(r2 + 0) = 0xab
        insn(0xB7, 0, imm=2),         # r0 = XDP_PASS
        EXIT,
    ])
    with k.load_program(prog_bytes, "xdp") as prog:
        res = prog.test_run(PACKET)
    assert res.retval == 2
    assert res.data_out == b"\xab" + PACKET[1:]


@pytest.mark.kernel
def test_test_run_output_too_small(kernel: k.Availability) -> None:
    with k.load_program(RET42, "socket_filter") as prog, pytest.raises(k.KernelError) as info:
        prog.test_run(PACKET, data_size_out=8)
    assert info.value.errno == errno.ENOSPC and info.value.command == "BPF_PROG_TEST_RUN"
    assert "needs 64" in str(info.value)


@pytest.mark.kernel
@pytest.mark.parametrize("log_level", [0, 1, 2])
def test_rejected_program(kernel: k.Availability, log_level: int) -> None:
    with pytest.raises(k.KernelVerifierError) as info:
        k.load_program(NO_R0, "socket_filter", log_level=log_level)
    e = info.value
    assert e.errno == errno.EACCES
    assert e.error_line == "R0 !read_ok"
    assert e.stats is not None and e.stats.insns_processed == 1
    assert e.stats.verification_time_usec is not None and e.stats.stack_depth == (0,)
    assert e.log.rstrip().endswith(e.log.rstrip().splitlines()[-1])
    assert "R0 !read_ok" in str(e)


@pytest.mark.kernel
def test_rejected_without_any_log(kernel: k.Availability) -> None:
    with pytest.raises(k.KernelVerifierError) as info:
        k.load_program(NO_R0, log_level=0, stats=False)
    assert info.value.errno == errno.EACCES
    assert info.value.log == "" and info.value.error_line == "" and info.value.stats is None


@pytest.mark.kernel
def test_unknown_prog_type_number_is_einval(kernel: k.Availability) -> None:
    with pytest.raises(k.KernelVerifierError) as info:
        k.load_program(RET42, 999)
    assert info.value.errno == errno.EINVAL


@pytest.mark.kernel
def test_log_grows_on_enospc(kernel: k.Availability) -> None:
    # 128 bytes cannot hold a level-2 log; the kernel answers ENOSPC and the
    # bridge retries with a bigger buffer until the whole log fits.
    with k.load_program(RET42, log_level=2, log_size=128) as prog:
        assert len(prog.log) > 128
        assert prog.log.startswith("func#0 @0")
        assert prog.stats is not None
    with pytest.raises(k.KernelVerifierError) as info:
        k.load_program(NO_R0, log_level=2, log_size=1)
    assert info.value.errno == errno.EACCES
    assert info.value.log.startswith("func#0 @0")
    assert info.value.error_line == "R0 !read_ok"


@pytest.mark.kernel
@pytest.mark.parametrize("map_type", ["hash", "array"])
def test_map_operations(kernel: k.Availability, map_type: str) -> None:
    def key(i: int) -> bytes:
        return struct.pack("<I", i)

    with k.create_map(map_type, 4, 8, 16, name="t_" + map_type) as m:
        assert m.fd >= 0
        for i in range(5):
            m.update(key(i), struct.pack("<Q", i * 10))
        assert m.lookup(key(3)) == struct.pack("<Q", 30)
        info = m.info()
        assert (info.type_name, info.key_size, info.value_size, info.max_entries) == (map_type, 4, 8, 16)
        assert info.name == "t_" + map_type
        if map_type == "hash":
            assert m.lookup(key(7)) is None
            assert sorted(m.keys()) == [key(i) for i in range(5)]
            assert m.delete(key(3)) is True
            assert m.delete(key(3)) is False
            assert m.lookup(key(3)) is None
            with pytest.raises(k.KernelError) as info_exists:
                m.update(key(1), bytes(8), C.BPF_NOEXIST)
            assert info_exists.value.errno == errno.EEXIST
            assert m.dump() == {key(i): struct.pack("<Q", i * 10) for i in (0, 1, 2, 4)}
        else:
            assert m.lookup(key(7)) == bytes(8)  # arrays are preallocated, zeroed
            assert list(m.keys()) == [key(i) for i in range(16)]
            with pytest.raises(k.KernelError) as info_del:
                m.delete(key(3))
            assert info_del.value.errno == errno.EINVAL
            assert m.lookup(key(16)) is None  # out of range reads as absent
        with pytest.raises(k.KernelArgumentError):
            m.lookup(b"\x00")
        with pytest.raises(k.KernelArgumentError):
            m.update(key(0), b"short")


@pytest.mark.kernel
def test_percpu_array_values_span_cpus(kernel: k.Availability) -> None:
    from ebpfvm.kernel.maps import possible_cpus

    with k.create_map("percpu_array", 4, 4, 2) as m:
        assert m.value_bytes == 8 * possible_cpus()
        assert m.lookup(bytes(4)) == bytes(m.value_bytes)


@pytest.mark.kernel
def test_bad_map_is_kernel_error(kernel: k.Availability) -> None:
    with pytest.raises(k.KernelError) as info:
        k.create_map("hash", 0, 8, 4)
    assert info.value.errno == errno.EINVAL and info.value.command == "BPF_MAP_CREATE"


@pytest.mark.kernel
@pytest.mark.parametrize("via", ["map_fd", "map_idx"])
def test_program_uses_map(kernel: k.Availability, via: str) -> None:
    with k.create_map("array", 4, 8, 1) as m:
        m.update(bytes(4), struct.pack("<Q", 41))
        if via == "map_fd":
            prog_bytes, fd_array = map_increment_prog(m.fd, C.BPF_PSEUDO_MAP_FD), ()
        else:
            prog_bytes, fd_array = map_increment_prog(0, C.BPF_PSEUDO_MAP_IDX), (m.fd,)
        with k.load_program(prog_bytes, "socket_filter", fd_array=fd_array) as prog:
            assert prog.info().nr_map_ids == 1
            assert prog.test_run(PACKET).retval == 41
            assert prog.test_run(PACKET).retval == 42
        assert m.lookup(bytes(4)) == struct.pack("<Q", 43)


@pytest.mark.kernel
def test_isolated_outcomes(kernel: k.Availability) -> None:
    ok = k.load_and_run_isolated(RET42, "xdp", PACKET)
    assert isinstance(ok, k.Accepted) and ok.kind == "accepted"
    assert ok.retval == 42 and ok.data_out == PACKET and ok.stats is not None

    rejected = k.load_and_run_isolated(NO_R0, "xdp", PACKET)
    assert isinstance(rejected, k.Rejected) and rejected.kind == "rejected"
    assert rejected.errno == errno.EACCES and rejected.error_line == "R0 !read_ok"
    assert "R0 !read_ok" in rejected.log

    not_run = k.load_and_run_isolated(RET42, "xdp", run=False)
    assert isinstance(not_run, k.Accepted) and not_run.retval is None

    # the run itself fails (an skb needs at least an Ethernet header)
    short = k.load_and_run_isolated(RET42, "socket_filter", b"\x00")
    assert isinstance(short, k.Accepted) and short.retval is None
    assert short.run_errno == errno.EINVAL


@pytest.mark.kernel
@pytest.mark.parametrize("src", [C.BPF_PSEUDO_MAP_FD, C.BPF_PSEUDO_MAP_IDX])
def test_isolated_with_maps(kernel: k.Availability, src: int) -> None:
    spec = k.MapSpec("array", 4, 8, 1, initial=((bytes(4), struct.pack("<Q", 7)),))
    out = k.load_and_run_isolated(map_increment_prog(0, src), "socket_filter", PACKET, maps=[spec])
    assert isinstance(out, k.Accepted)
    assert out.retval == 7
    assert out.maps == ({bytes(4): struct.pack("<Q", 8)},)


@pytest.mark.kernel
def test_no_fd_leaks(kernel: k.Availability) -> None:
    gc.collect()
    before = open_fds()
    for _ in range(30):
        with k.load_program(RET42) as prog:
            prog.test_run(PACKET)
        with pytest.raises(k.KernelVerifierError):
            k.load_program(NO_R0)
        with pytest.raises(RuntimeError), k.load_program(RET42, "xdp"):
            raise RuntimeError("inside with")
        with pytest.raises(RuntimeError), k.create_map("hash", 4, 4, 8) as m:
            m.update(bytes(4), bytes(4))
            raise RuntimeError("inside with")
        with pytest.raises(k.KernelError):
            k.create_map("hash", 0, 0, 0)
        k.load_program(RET42, log_level=2, log_size=128)  # dropped: __del__ closes it
        k.create_map("array", 4, 4, 1)  # likewise
        prog = k.load_program(RET42)
        prog.close()
        prog.close()  # idempotent
    for _ in range(5):
        k.load_and_run_isolated(RET42, "xdp", PACKET)
        k.load_and_run_isolated(NO_R0, "xdp", PACKET)
    with pytest.raises(k.ChildCrashed):
        k.run_in_child(time.sleep, 10, timeout=0.2)
    gc.collect()
    assert open_fds() == before


@pytest.mark.kernel
def test_closed_objects_refuse_use(kernel: k.Availability) -> None:
    prog = k.load_program(RET42)
    prog.close()
    with pytest.raises(k.KernelArgumentError):
        prog.test_run(PACKET)
    m = k.create_map("hash", 4, 4, 1)
    m.close()
    with pytest.raises(k.KernelArgumentError):
        m.lookup(bytes(4))


@pytest.mark.kernel
def test_return_range_rejection(kernel: k.Availability) -> None:
    # cgroup_skb programs must return 0 or 1; this kernel says so with EINVAL.
    with pytest.raises(k.KernelVerifierError) as info:
        k.load_program(RET42, "cgroup_skb")
    assert info.value.errno == errno.EINVAL
    assert info.value.error_line.startswith("At program exit the register R0 has smin=42 smax=42")


def test_require_kernel_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import ebpfvm.kernel

    monkeypatch.setattr(ebpfvm.kernel, "_cached", k.Availability(False, "pretend: no bpf"))
    monkeypatch.delenv("EBPFVM_REQUIRE_KERNEL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pretend: no bpf"):
        require_kernel()
    monkeypatch.setenv("EBPFVM_REQUIRE_KERNEL", "1")
    with pytest.raises(pytest.fail.Exception, match="pretend: no bpf"):
        require_kernel()


@pytest.mark.kernel
def test_skb_context_in_and_out(kernel: k.Availability) -> None:
    read_mark = insn(0x61, 0, 1, 8) + EXIT  # r0 = skb->mark (offset 8 of __sk_buff)
    ctx = bytearray(192)  # sizeof(struct __sk_buff)
    struct.pack_into("<I", ctx, 8, 77)
    with k.load_program(read_mark, "sched_cls") as prog:
        res = prog.test_run(PACKET, ctx_in=bytes(ctx))
    assert res.retval == 77
    assert res.ctx_out is not None and len(res.ctx_out) == 192
    assert struct.unpack_from("<I", res.ctx_out, 8)[0] == 77


@pytest.mark.kernel
def test_syscall_program_context_written_back(kernel: k.Availability) -> None:
    prog_bytes = b"".join([
        insn(0x61, 0, 1, 0),        # r0 = *(u32 *)(r1 + 0)
        insn(0x62, 1, 0, 4, 7),     # *(u32 *)(r1 + 4) = 7
        EXIT,
    ])
    # syscall programs must be sleepable; their test run takes no repeat count
    with k.load_program(prog_bytes, "syscall", prog_flags=C.BPF_F_SLEEPABLE) as prog:
        res = prog.test_run(ctx_in=struct.pack("<II", 5, 0))
    assert res.retval == 5
    assert res.ctx_out == struct.pack("<II", 5, 7)
