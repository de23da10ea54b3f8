"""BPF_OBJ_GET_INFO_BY_FD for programs and maps.

The kernel's view of an object after loading: what the verifier rewrote the
program into (``xlated``), how big the JIT output is, how many instructions
the verifier walked.  Useful to compare our own verifier/JIT against.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from ebpfvm.kernel import syscall as sc
from ebpfvm.kernel.constants import map_type_name, prog_type_name


@dataclass(frozen=True)
class ProgInfo:
    type: int
    id: int
    tag: bytes  # 8-byte hash of the original instructions
    jited_prog_len: int
    xlated_prog_len: int
    load_time_ns: int  # since boot
    created_by_uid: int
    nr_map_ids: int
    name: str
    gpl_compatible: bool
    verified_insns: int
    run_time_ns: int  # only counted while BPF_ENABLE_STATS is on
    run_cnt: int

    @property
    def type_name(self) -> str:
        return prog_type_name(self.type)


@dataclass(frozen=True)
class MapInfo:
    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: str
    map_extra: int

    @property
    def type_name(self) -> str:
        return map_type_name(self.type)


def _get_info(fd: int, info: ctypes.Structure) -> None:
    attr = sc.ObjInfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    sc.bpf(sc.BPF_OBJ_GET_INFO_BY_FD, attr)


def prog_info(fd: int) -> ProgInfo:
    """Info of the program behind ``fd``; KernelError if it is not one."""
    raw = sc.ProgInfoStruct()
    _get_info(fd, raw)
    return ProgInfo(
        type=raw.type,
        id=raw.id,
        tag=bytes(raw.tag),
        jited_prog_len=raw.jited_prog_len,
        xlated_prog_len=raw.xlated_prog_len,
        load_time_ns=raw.load_time,
        created_by_uid=raw.created_by_uid,
        nr_map_ids=raw.nr_map_ids,
        name=raw.name.decode(errors="replace"),
        gpl_compatible=bool(raw.gpl_compatible & 1),
        verified_insns=raw.verified_insns,
        run_time_ns=raw.run_time_ns,
        run_cnt=raw.run_cnt,
    )


def _prog_code(fd: int, length_field: str, pointer_field: str) -> bytes:
    # Two calls: the first learns the length, the second passes a buffer of
    # that size.  Reading xlated code needs root (bpf_dump_raw_ok) and is
    # refused when kptr_restrict hides kernel addresses: length then reads 0.
    first = sc.ProgInfoStruct()
    _get_info(fd, first)
    size = getattr(first, length_field)
    if size == 0:
        return b""
    buf = ctypes.create_string_buffer(size)
    second = sc.ProgInfoStruct()
    setattr(second, length_field, size)
    setattr(second, pointer_field, ctypes.addressof(buf))
    _get_info(fd, second)
    return buf.raw[: min(size, getattr(second, length_field))]


def prog_xlated(fd: int) -> bytes:
    """The program as the verifier rewrote it (8-byte instructions; map
    pointers appear as kernel addresses or are zeroed when hidden)."""
    return _prog_code(fd, "xlated_prog_len", "xlated_prog_insns")


def prog_jited(fd: int) -> bytes:
    """The JIT's native machine code (empty if the JIT is off)."""
    return _prog_code(fd, "jited_prog_len", "jited_prog_insns")


def map_info(fd: int) -> MapInfo:
    """Info of the map behind ``fd``; KernelError if it is not one."""
    raw = sc.MapInfoStruct()
    _get_info(fd, raw)
    return MapInfo(
        type=raw.type,
        id=raw.id,
        key_size=raw.key_size,
        value_size=raw.value_size,
        max_entries=raw.max_entries,
        map_flags=raw.map_flags,
        name=raw.name.decode(errors="replace"),
        map_extra=raw.map_extra,
    )
