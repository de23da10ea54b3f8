"""The raw bpf(2) system call through ctypes, and the ``union bpf_attr``
members this package uses.

glibc has no ``bpf()`` wrapper, so we go through ``syscall(2)`` with the
architecture's syscall number.  Each command gets its own ``ctypes.Structure``
holding only the leading fields of that union member; the kernel accepts a
shorter ``size`` and zero-fills the rest, so we never need the full union.
Layouts follow include/uapi/linux/bpf.h; padding is spelled out so offsets do
not depend on the host ABI's alignment of 64-bit integers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import platform
import sys
from typing import Final

from ebpfvm.kernel.errors import KernelError, KernelUnavailable

# --- commands (enum bpf_cmd) -------------------------------------------------

BPF_MAP_CREATE: Final = 0
BPF_MAP_LOOKUP_ELEM: Final = 1
BPF_MAP_UPDATE_ELEM: Final = 2
BPF_MAP_DELETE_ELEM: Final = 3
BPF_MAP_GET_NEXT_KEY: Final = 4
BPF_PROG_LOAD: Final = 5
BPF_OBJ_PIN: Final = 6
BPF_OBJ_GET: Final = 7
BPF_PROG_ATTACH: Final = 8
BPF_PROG_DETACH: Final = 9
BPF_PROG_TEST_RUN: Final = 10
BPF_PROG_RUN: Final = BPF_PROG_TEST_RUN
BPF_PROG_GET_NEXT_ID: Final = 11
BPF_MAP_GET_NEXT_ID: Final = 12
BPF_PROG_GET_FD_BY_ID: Final = 13
BPF_MAP_GET_FD_BY_ID: Final = 14
BPF_OBJ_GET_INFO_BY_FD: Final = 15
BPF_PROG_QUERY: Final = 16
BPF_RAW_TRACEPOINT_OPEN: Final = 17
BPF_BTF_LOAD: Final = 18
BPF_BTF_GET_FD_BY_ID: Final = 19
BPF_TASK_FD_QUERY: Final = 20
BPF_MAP_LOOKUP_AND_DELETE_ELEM: Final = 21
BPF_MAP_FREEZE: Final = 22
BPF_BTF_GET_NEXT_ID: Final = 23
BPF_MAP_LOOKUP_BATCH: Final = 24
BPF_MAP_LOOKUP_AND_DELETE_BATCH: Final = 25
BPF_MAP_UPDATE_BATCH: Final = 26
BPF_MAP_DELETE_BATCH: Final = 27
BPF_LINK_CREATE: Final = 28
BPF_LINK_UPDATE: Final = 29
BPF_LINK_GET_FD_BY_ID: Final = 30
BPF_LINK_GET_NEXT_ID: Final = 31
BPF_ENABLE_STATS: Final = 32
BPF_ITER_CREATE: Final = 33
BPF_LINK_DETACH: Final = 34
BPF_PROG_BIND_MAP: Final = 35
BPF_TOKEN_CREATE: Final = 36

COMMAND_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in sorted(globals().items(), reverse=True)
    if name.startswith("BPF_") and isinstance(value, int) and name != "BPF_PROG_RUN"
}

# --- syscall numbers ---------------------------------------------------------

# __NR_bpf per architecture (platform.machine() spelling).  The asm-generic
# table (280) is shared by arm64, riscv64 and loongarch64.
SYSCALL_NUMBERS: Final[dict[str, int]] = {
    "x86_64": 321,
    "amd64": 321,
    "aarch64": 280,
    "arm64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "i386": 357,
    "i686": 357,
    "armv7l": 386,
    "armv6l": 386,
    "ppc64le": 361,
    "ppc64": 361,
    "s390x": 351,
}

_libc: ctypes.CDLL | None = None


def syscall_number() -> int:
    """__NR_bpf for this machine; KernelUnavailable if not Linux or unknown."""
    if not sys.platform.startswith("linux"):
        raise KernelUnavailable(f"not Linux (platform is {sys.platform})")
    machine = platform.machine()
    try:
        return SYSCALL_NUMBERS[machine]
    except KeyError:
        raise KernelUnavailable(f"no bpf() syscall number known for machine {machine!r}") from None


def _syscall_fn() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    global _libc
    if _libc is None:
        # use_errno=True makes ctypes save errno right after the call, so a
        # later Python-level libc call cannot clobber it before we read it.
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc.syscall


def bpf_raw(cmd: int, attr: ctypes.Structure) -> tuple[int, int]:
    """One bpf(cmd, &attr, sizeof(attr)) call: (return value, errno).

    errno is 0 on success.  No retrying and no exceptions for kernel errors,
    so callers can treat particular errnos (ENOENT, ENOSPC) as results.
    """
    nr = syscall_number()
    fn = _syscall_fn()
    ctypes.set_errno(0)
    ret = fn(ctypes.c_long(nr), ctypes.c_long(cmd), ctypes.byref(attr),
             ctypes.c_long(ctypes.sizeof(attr)))
    if ret < 0:
        return ret, ctypes.get_errno() or _errno.EIO
    return ret, 0


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(2) that raises KernelError on failure; EINTR is retried because
    the kernel returns it for a pending signal, not for a property of the call."""
    while True:
        ret, err = bpf_raw(cmd, attr)
        if err == 0:
            return ret
        if err != _errno.EINTR:
            raise KernelError(err, command_name(cmd))


def command_name(cmd: int) -> str:
    return COMMAND_NAMES.get(cmd, f"bpf cmd {cmd}")


# --- union bpf_attr members --------------------------------------------------

u32 = ctypes.c_uint32
s32 = ctypes.c_int32
u64 = ctypes.c_uint64
BPF_OBJ_NAME_LEN: Final = 16


class MapCreateAttr(ctypes.Structure):
    """BPF_MAP_CREATE; through map_token_fd (6.9+).  Later fields stay zero."""

    _fields_ = [
        ("map_type", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("inner_map_fd", u32),
        ("numa_node", u32),
        ("map_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("map_ifindex", u32),
        ("btf_fd", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("map_extra", u64),
        ("value_type_btf_obj_fd", s32),
        ("map_token_fd", s32),
    ]


class MapElemAttr(ctypes.Structure):
    """BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM, GET_NEXT_KEY, FREEZE.  ``key`` and
    ``value`` (``next_key`` for GET_NEXT_KEY) are user pointers."""

    _fields_ = [
        ("map_fd", u32),
        ("_pad0", u32),
        ("key", u64),
        ("value", u64),  # union with next_key
        ("flags", u64),
    ]


class ProgLoadAttr(ctypes.Structure):
    """BPF_PROG_LOAD; through fd_array_cnt (6.14+).  ``log_true_size`` is an
    output (6.4+): the log size the kernel needed, used to size the retry."""

    _fields_ = [
        ("prog_type", u32),
        ("insn_cnt", u32),
        ("insns", u64),
        ("license", u64),
        ("log_level", u32),
        ("log_size", u32),
        ("log_buf", u64),
        ("kern_version", u32),
        ("prog_flags", u32),
        ("prog_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", u32),
        ("expected_attach_type", u32),
        ("prog_btf_fd", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("func_info_cnt", u32),
        ("line_info_rec_size", u32),
        ("line_info", u64),
        ("line_info_cnt", u32),
        ("attach_btf_id", u32),
        ("attach_prog_fd", u32),  # union with attach_btf_obj_fd
        ("core_relo_cnt", u32),
        ("fd_array", u64),
        ("core_relos", u64),
        ("core_relo_rec_size", u32),
        ("log_true_size", u32),
        ("prog_token_fd", s32),
        ("fd_array_cnt", u32),
    ]


class TestRunAttr(ctypes.Structure):
    """BPF_PROG_TEST_RUN.  ``retval``, ``duration`` (mean ns per repeat) and
    the ``*_size_out`` fields are written back by the kernel."""

    __test__ = False  # not a pytest test class despite the name

    _fields_ = [
        ("prog_fd", u32),
        ("retval", u32),
        ("data_size_in", u32),
        ("data_size_out", u32),
        ("data_in", u64),
        ("data_out", u64),
        ("repeat", u32),
        ("duration", u32),
        ("ctx_size_in", u32),
        ("ctx_size_out", u32),
        ("ctx_in", u64),
        ("ctx_out", u64),
        ("flags", u32),
        ("cpu", u32),
        ("batch_size", u32),
        ("_pad0", u32),
    ]


class ObjInfoAttr(ctypes.Structure):
    """BPF_OBJ_GET_INFO_BY_FD: ``info`` points at a bpf_{prog,map}_info of
    ``info_len`` bytes; the kernel shrinks info_len to what it filled."""

    _fields_ = [
        ("bpf_fd", u32),
        ("info_len", u32),
        ("info", u64),
    ]


class GetIdAttr(ctypes.Structure):
    """BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID."""

    _fields_ = [
        ("id", u32),  # start_id / prog_id / map_id ...
        ("next_id", u32),
        ("open_flags", u32),
        ("fd_by_id_token_fd", s32),
    ]


class ProgInfoStruct(ctypes.Structure):
    """struct bpf_prog_info (through attach_btf_id)."""

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", u32),
        ("xlated_prog_len", u32),
        ("jited_prog_insns", u64),
        ("xlated_prog_insns", u64),
        ("load_time", u64),
        ("created_by_uid", u32),
        ("nr_map_ids", u32),
        ("map_ids", u64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", u32),
        ("gpl_compatible", u32),  # bit 0; the other 31 bits are padding
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("nr_jited_ksyms", u32),
        ("nr_jited_func_lens", u32),
        ("jited_ksyms", u64),
        ("jited_func_lens", u64),
        ("btf_id", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("nr_func_info", u32),
        ("nr_line_info", u32),
        ("line_info", u64),
        ("jited_line_info", u64),
        ("nr_jited_line_info", u32),
        ("line_info_rec_size", u32),
        ("jited_line_info_rec_size", u32),
        ("nr_prog_tags", u32),
        ("prog_tags", u64),
        ("run_time_ns", u64),
        ("run_cnt", u64),
        ("recursion_misses", u64),
        ("verified_insns", u32),
        ("attach_btf_obj_id", u32),
        ("attach_btf_id", u32),
        ("_pad0", u32),
    ]


class MapInfoStruct(ctypes.Structure):
    """struct bpf_map_info (through map_extra)."""

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("btf_id", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_id", u32),
        ("map_extra", u64),
    ]


def address_of(buf: ctypes.Array | None) -> int:  # type: ignore[type-arg]
    """User pointer for a ctypes buffer (0 for None) to put in a u64 field."""
    return ctypes.addressof(buf) if buf is not None else 0
