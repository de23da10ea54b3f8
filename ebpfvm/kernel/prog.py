"""Loading programs into the kernel verifier and running them with
BPF_PROG_TEST_RUN."""

from __future__ import annotations

import ctypes
import errno as _errno
from collections.abc import Sequence
from dataclasses import dataclass

from ebpfvm.errors import DecodeError, InstructionIssue
from ebpfvm.kernel import syscall as sc
from ebpfvm.kernel.constants import (
    BPF_LOG_STATS,
    BPF_PROG_TYPE_SYSCALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    attach_type_number,
    prog_type_name,
    prog_type_number,
)
from ebpfvm.kernel.fd import OwnedFd
from ebpfvm.kernel.errors import KernelArgumentError, KernelError, KernelVerifierError
from ebpfvm.kernel.info import ProgInfo, prog_info, prog_jited, prog_xlated
from ebpfvm.kernel.log import VerifierStats, last_error_line, parse_stats

INSN_SIZE = 8
DEFAULT_LOG_SIZE = 1 << 16
# The kernel refuses a log buffer under 128 bytes or over UINT_MAX >> 2.
MIN_LOG_SIZE = 128
MAX_LOG_SIZE = (1 << 30) - 1
# libbpf retries EAGAIN from BPF_PROG_LOAD: the verifier returns it when it
# was interrupted and wants to be restarted.
_LOAD_RETRIES = 5
# Room the kernel may need beyond the input packet: XDP programs can grow the
# frame into the tailroom, skb programs can push headers.
_DATA_OUT_SLACK = 4096
# struct bpf_func_info and struct bpf_line_info.
_FUNC_INFO_SIZE = 8
_LINE_INFO_SIZE = 16
# Test runs of these types refuse a non-zero repeat count.
_NO_REPEAT_TYPES = frozenset({prog_type_number("raw_tracepoint"), BPF_PROG_TYPE_SYSCALL})


@dataclass(frozen=True)
class TestRunResult:
    """One BPF_PROG_TEST_RUN.  ``retval`` is r0 as the kernel's u32;
    ``duration_ns`` the mean time of one run over ``repeat`` runs."""

    __test__ = False  # not a pytest test class despite the name

    retval: int
    data_out: bytes
    ctx_out: bytes | None
    duration_ns: int


def _check_insns(insns: bytes) -> None:
    if len(insns) == 0:
        raise DecodeError([InstructionIssue(0, "empty program")], "kernel load")
    if len(insns) % INSN_SIZE:
        n = len(insns) // INSN_SIZE
        raise DecodeError(
            [InstructionIssue(n, f"truncated instruction: {len(insns) % INSN_SIZE} trailing bytes")],
            "kernel load",
        )


def relocate_map_indices(insns: bytes, fds: Sequence[int]) -> bytes:
    """Replace map *indices* by map fds in ld_imm64 instructions.

    Generated programs cannot know the fds a process will get, so they put
    the index of the map in ``imm`` with src_reg BPF_PSEUDO_MAP_FD (1) or
    BPF_PSEUDO_MAP_VALUE (2); this writes ``fds[index]`` there.  (Programs
    that use BPF_PSEUDO_MAP_IDX/IDX_VALUE instead need no rewriting: pass
    ``fd_array`` to :func:`load_program` and the kernel resolves them.)
    """
    _check_insns(insns)
    out = bytearray(insns)
    count = len(out) // INSN_SIZE
    i = 0
    while i < count:
        off = i * INSN_SIZE
        if out[off] == 0x18:  # BPF_LD | BPF_IMM | BPF_DW: two slots
            src = out[off + 1] >> 4
            if src in (BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE):
                index = int.from_bytes(out[off + 4 : off + 8], "little", signed=True)
                if not 0 <= index < len(fds):
                    raise KernelArgumentError(
                        "insns", f"insn {i}: map index {index} but {len(fds)} map(s) given"
                    )
                out[off + 4 : off + 8] = int(fds[index]).to_bytes(4, "little", signed=True)
            i += 2
        else:
            i += 1
    return bytes(out)


class LoadedProgram(OwnedFd):
    """A program the kernel accepted; owns its fd.

    Use as a context manager, or call :meth:`close`; the fd is also closed
    when the object is garbage collected, as a safety net only.
    """

    _what = "program"

    def __init__(self, fd: int, prog_type: int, insn_cnt: int, log: str,
                 stats: VerifierStats | None, name: str = "") -> None:
        super().__init__(fd)
        self.prog_type = prog_type
        self.insn_cnt = insn_cnt
        self.log = log
        self.stats = stats
        self.name = name

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<LoadedProgram {prog_type_name(self.prog_type)} insns={self.insn_cnt} {state}>"

    def info(self) -> ProgInfo:
        return prog_info(self.fd)

    def xlated(self) -> bytes:
        """The instructions after the verifier's rewrites."""
        return prog_xlated(self.fd)

    def jited(self) -> bytes:
        """The JIT's machine code."""
        return prog_jited(self.fd)

    def test_run(
        self,
        data_in: bytes = b"",
        *,
        ctx_in: bytes | None = None,
        data_size_out: int | None = None,
        ctx_size_out: int | None = None,
        repeat: int | None = None,
        flags: int = 0,
        cpu: int = 0,
    ) -> TestRunResult:
        """Run the program once (or ``repeat`` times) on ``data_in``/``ctx_in``.

        Defaults: a data_out buffer of ``len(data_in) + 4096`` when there is
        input data; a ctx_out buffer the size of ``ctx_in``; repeat 1, or 0
        for the types that refuse a repeat count.  A too small output buffer
        raises KernelError with errno ENOSPC.

        Skb and XDP types need at least 14 bytes (an Ethernet header) of
        ``data_in``; for types that do not see L2 (socket_filter,
        cgroup_skb...) the kernel strips that header before the run
        (``skb->len`` excludes it) and hands back a zeroed one in
        ``data_out``.  Syscall programs take only ``ctx_in``, which the
        kernel writes back; that is returned as ``ctx_out``.
        """
        is_syscall = self.prog_type == BPF_PROG_TYPE_SYSCALL
        if repeat is None:
            repeat = 0 if self.prog_type in _NO_REPEAT_TYPES else 1
        if data_size_out is None:
            data_size_out = len(data_in) + _DATA_OUT_SLACK if data_in else 0
        if ctx_size_out is None:
            ctx_size_out = len(ctx_in) if ctx_in is not None and not is_syscall else 0

        din = ctypes.create_string_buffer(bytes(data_in), len(data_in)) if data_in else None
        dout = ctypes.create_string_buffer(data_size_out) if data_size_out else None
        # Writable on purpose: syscall programs copy their context back into it.
        cin = ctypes.create_string_buffer(bytes(ctx_in), len(ctx_in)) if ctx_in else None
        cout = ctypes.create_string_buffer(ctx_size_out) if ctx_size_out else None
        attr = sc.TestRunAttr(
            prog_fd=self.fd,
            data_size_in=len(data_in),
            data_size_out=data_size_out,
            data_in=sc.address_of(din),
            data_out=sc.address_of(dout),
            repeat=repeat,
            ctx_size_in=len(ctx_in) if ctx_in else 0,
            ctx_size_out=ctx_size_out,
            ctx_in=sc.address_of(cin),
            ctx_out=sc.address_of(cout),
            flags=flags,
            cpu=cpu,
        )
        _ret, err = _bpf_retry_eintr(sc.BPF_PROG_TEST_RUN, attr)
        if err == _errno.ENOSPC:
            raise KernelError(
                err, "BPF_PROG_TEST_RUN",
                f"output buffer too small: data_out needs {attr.data_size_out} "
                f"(gave {data_size_out}), ctx_out needs {attr.ctx_size_out} (gave {ctx_size_out})",
            )
        if err:
            raise KernelError(err, "BPF_PROG_TEST_RUN")
        data_out = dout.raw[: min(attr.data_size_out, data_size_out)] if dout is not None else b""
        if is_syscall and cin is not None:
            ctx_out: bytes | None = cin.raw
        elif cout is not None:
            ctx_out = cout.raw[: min(attr.ctx_size_out, ctx_size_out)]
        else:
            ctx_out = None
        return TestRunResult(attr.retval, data_out, ctx_out, attr.duration)


def _bpf_retry_eintr(cmd: int, attr: ctypes.Structure) -> tuple[int, int]:
    while True:
        ret, err = sc.bpf_raw(cmd, attr)
        if err != _errno.EINTR:
            return ret, err


def load_program(
    insns: bytes,
    prog_type: int | str = "socket_filter",
    *,
    license: str = "GPL",
    log_level: int = 1,
    stats: bool = True,
    expected_attach_type: int | str = 0,
    prog_flags: int = 0,
    name: str = "",
    log_size: int = DEFAULT_LOG_SIZE,
    fd_array: Sequence[int] = (),
    attach_btf_id: int = 0,
    attach_prog_fd: int = 0,
    prog_btf_fd: int = 0,
    func_info: bytes = b"",
    line_info: bytes = b"",
) -> LoadedProgram:
    """BPF_PROG_LOAD ``insns`` (raw 8-byte instructions, host byte order).

    ``log_level`` 1 or 2 selects the verifier's trace; ``stats`` adds the
    statistics bit (4), so ``log_level=0, stats=True`` gives only the error
    message and statistics, and ``log_level=0, stats=False`` no log at all.
    The log buffer starts at ``log_size`` bytes (clamped to the kernel's
    128..1 GiB) and grows on ENOSPC until the whole log fits.

    ``prog_btf_fd`` (a loaded BTF), ``func_info`` (8-byte records: insn
    index, FUNC type id) and ``line_info`` (16-byte records: insn index,
    file name offset, line offset, line << 10 | column) describe the program
    with BTF, as an ELF object's .BTF.ext does.

    Raises KernelVerifierError (with ``errno``, ``log``, ``error_line``,
    ``stats``) if the kernel refuses the program, DecodeError if ``insns`` is
    not whole instructions.
    """
    _check_insns(insns)
    ptype = prog_type_number(prog_type)
    level = log_level | (BPF_LOG_STATS if stats else 0)
    size = min(max(log_size, MIN_LOG_SIZE), MAX_LOG_SIZE)
    name_bytes = name.encode()[: sc.BPF_OBJ_NAME_LEN - 1]

    insn_buf = ctypes.create_string_buffer(bytes(insns), len(insns))
    license_buf = ctypes.create_string_buffer(license.encode())
    fds = (ctypes.c_int * len(fd_array))(*fd_array) if fd_array else None
    func_buf = ctypes.create_string_buffer(bytes(func_info), len(func_info)) if func_info else None
    line_buf = ctypes.create_string_buffer(bytes(line_info), len(line_info)) if line_info else None

    retries = 0
    while True:
        # A fresh buffer each attempt; with level 0 the kernel wants no buffer
        # at all (a buffer with log_level 0 is EINVAL).
        log_buf = ctypes.create_string_buffer(size) if level else None
        attr = sc.ProgLoadAttr(
            prog_type=ptype,
            insn_cnt=len(insns) // INSN_SIZE,
            insns=ctypes.addressof(insn_buf),
            license=ctypes.addressof(license_buf),
            log_level=level,
            log_size=size if level else 0,
            log_buf=sc.address_of(log_buf),
            prog_flags=prog_flags,
            prog_name=name_bytes,
            expected_attach_type=attach_type_number(expected_attach_type),
            attach_btf_id=attach_btf_id,
            attach_prog_fd=attach_prog_fd,
            fd_array=sc.address_of(fds),
            prog_btf_fd=prog_btf_fd,
            func_info_rec_size=_FUNC_INFO_SIZE if func_info else 0,
            func_info=sc.address_of(func_buf),
            func_info_cnt=len(func_info) // _FUNC_INFO_SIZE,
            line_info_rec_size=_LINE_INFO_SIZE if line_info else 0,
            line_info=sc.address_of(line_buf),
            line_info_cnt=len(line_info) // _LINE_INFO_SIZE,
        )
        fd, err = sc.bpf_raw(sc.BPF_PROG_LOAD, attr)
        if err in (_errno.EAGAIN, _errno.EINTR) and retries < _LOAD_RETRIES:
            retries += 1
            continue
        # ENOSPC: the log did not fit (the kernel then refuses even a good
        # program).  log_true_size (6.4+) says how much it needed.
        if err == _errno.ENOSPC and log_buf is not None and size < MAX_LOG_SIZE:
            size = min(MAX_LOG_SIZE, max(size * 2, attr.log_true_size))
            continue
        break

    # Own the fd before doing anything else that could raise.
    prog = LoadedProgram(fd, ptype, len(insns) // INSN_SIZE, "", None, name_bytes.decode()) if not err else None
    log = log_buf.value.decode(errors="replace") if log_buf is not None else ""
    parsed = parse_stats(log)
    if prog is None:
        raise KernelVerifierError(err, log, last_error_line(log), parsed)
    prog.log, prog.stats = log, parsed
    return prog
