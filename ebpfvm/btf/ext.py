"""Parse a .BTF.ext section: func_info, line_info and CO-RE relocations.

Records are grouped by the ELF section of the code they describe; offsets
(``insn_off``) are in bytes from the start of that section, as the compiler
writes them.  Every string is an offset into the .BTF string table.  Layout:
Documentation/bpf/llvm_reloc.rst and btf.rst ("BTF.ext section").  Record
sizes come from the file and may grow; we read the fields we know and skip
the rest, as libbpf does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, TypeVar

from .errors import BtfError
from .resolve import MAX_DEPTH, skip_modifiers, type_name
from .types import Array, Btf, Enum, Kind, Struct

SECTION = ".BTF.ext"
MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")  # magic version flags hdr_len func_off func_len line_off line_len
_CORE_HEADER = struct.Struct("<II")  # core_relo_off core_relo_len (hdr_len >= 32)
_U32 = struct.Struct("<I")
_SEC = struct.Struct("<II")  # sec_name_off num_info
_FUNC = struct.Struct("<II")  # insn_off type_id
_LINE = struct.Struct("<IIII")  # insn_off file_name_off line_off line_col
_CORE = struct.Struct("<IIII")  # insn_off type_id access_str_off kind

MAX_ACCESS_COMPONENTS = 64


class CoreReloKind(IntEnum):
    """enum bpf_core_relo_kind (include/uapi/linux/bpf.h), with libbpf's names."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


CORE_KIND_NAMES = {
    CoreReloKind.FIELD_BYTE_OFFSET: "byte_off", CoreReloKind.FIELD_BYTE_SIZE: "byte_sz",
    CoreReloKind.FIELD_EXISTS: "field_exists", CoreReloKind.FIELD_SIGNED: "signed",
    CoreReloKind.FIELD_LSHIFT_U64: "lshift_u64", CoreReloKind.FIELD_RSHIFT_U64: "rshift_u64",
    CoreReloKind.TYPE_ID_LOCAL: "local_type_id", CoreReloKind.TYPE_ID_TARGET: "target_type_id",
    CoreReloKind.TYPE_EXISTS: "type_exists", CoreReloKind.TYPE_SIZE: "type_size",
    CoreReloKind.ENUMVAL_EXISTS: "enumval_exists", CoreReloKind.ENUMVAL_VALUE: "enumval_value",
    CoreReloKind.TYPE_MATCHES: "type_matches",
}


@dataclass(frozen=True)
class FuncInfo:
    section: str
    insn_off: int  # bytes from the start of the section
    type_id: int   # a FUNC
    name: str


@dataclass(frozen=True)
class LineRecord:
    section: str
    insn_off: int
    file: str
    line: int
    column: int
    text: str
    # The raw string offsets, which the kernel wants back (BPF_PROG_LOAD line_info).
    file_name_off: int = 0
    line_off: int = 0


@dataclass(frozen=True)
class CoreRelocation:
    """One CO-RE relocation: the instruction at ``insn_off`` of ``section``
    needs a value (field offset, type size, ...) computed against the
    running kernel's BTF.  ``target`` spells the accessed field or type."""

    section: str
    insn_off: int
    type_id: int
    access: str
    kind: CoreReloKind
    target: str

    def describe(self) -> str:
        return f"{self.section}+{self.insn_off:#x}: {CORE_KIND_NAMES[self.kind]} {self.target} (access {self.access})"


@dataclass(frozen=True)
class BtfExt:
    func_info: tuple[FuncInfo, ...]
    line_info: tuple[LineRecord, ...]
    core_relocations: tuple[CoreRelocation, ...]

    def lines_in(self, section: str) -> tuple[LineRecord, ...]:
        return tuple(r for r in self.line_info if r.section == section)


R = TypeVar("R")


def parse_btf_ext(data: bytes, btf: Btf) -> BtfExt:
    """The records of a .BTF.ext section; strings and type ids are checked against ``btf``."""
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise BtfError(f"{len(data)} bytes is too short for a BTF.ext header", section=SECTION, offset=0)
    magic, version, _flags, hdr_len, func_off, func_len, line_off, line_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BtfError(f"bad magic {magic:#06x} (expected {MAGIC:#06x})", section=SECTION, offset=0)
    if version != 1:
        raise BtfError(f"unsupported BTF.ext version {version}", section=SECTION, offset=2)
    if hdr_len < _HEADER.size or hdr_len > len(data):
        raise BtfError(f"header length {hdr_len} outside 24..{len(data)}", section=SECTION, offset=4)
    core_off = core_len = 0
    if hdr_len >= _HEADER.size + _CORE_HEADER.size:
        core_off, core_len = _CORE_HEADER.unpack_from(data, _HEADER.size)
    if btf.strings is None:
        raise BtfError("no string table to resolve names against", section=SECTION)
    reader = _InfoReader(data, hdr_len, btf)
    funcs = reader.records("func_info", func_off, func_len, _FUNC, reader.func)
    lines = reader.records("line_info", line_off, line_len, _LINE, reader.line)
    cores = reader.records("core_relo", core_off, core_len, _CORE, reader.core)
    return BtfExt(tuple(funcs), tuple(lines), tuple(cores))


class _InfoReader:
    def __init__(self, data: bytes, hdr_len: int, btf: Btf) -> None:
        self.data = data
        self.hdr_len = hdr_len
        self.btf = btf

    def fail(self, message: str, offset: int) -> BtfError:
        return BtfError(message, section=SECTION, offset=offset)

    def string(self, off: int, what: str, pos: int) -> str:
        try:
            return self.btf.strings.get(off, what)  # type: ignore[union-attr]
        except BtfError as e:
            raise self.fail(f"{e.message} (in .BTF)", pos) from None

    def records(self, what: str, off: int, length: int, layout: struct.Struct,
                make: Callable[[str, tuple[int, ...], int], R]) -> list[R]:
        if length == 0:
            return []
        start = self.hdr_len + off
        end = start + length
        if off > len(self.data) or end > len(self.data):
            raise self.fail(f"{what} [{off}, +{length}) outside the section", 8)
        if length < 4:
            raise self.fail(f"{what} too short for its record size", start)
        (rec_size,) = _U32.unpack_from(self.data, start)
        if rec_size < layout.size or rec_size % 4:
            raise self.fail(f"{what} record size {rec_size} (need a multiple of 4, at least {layout.size})", start)
        out: list[R] = []
        pos = start + 4
        while pos < end:  # each step consumes at least 8 bytes
            if end - pos < _SEC.size:
                raise self.fail(f"{what}: truncated section header", pos)
            name_off, count = _SEC.unpack_from(self.data, pos)
            section = self.string(name_off, "section name", pos)
            pos += _SEC.size
            if count == 0:
                raise self.fail(f"{what} for section {section!r} has no records", pos - _SEC.size)
            if count > (end - pos) // rec_size:
                raise self.fail(f"{what} for section {section!r}: {count} records of {rec_size} bytes "
                                f"do not fit in the {end - pos} bytes left", pos - _SEC.size)
            for _ in range(count):
                out.append(make(section, layout.unpack_from(self.data, pos), pos))
                pos += rec_size
        return out

    def _type(self, type_id: int, pos: int) -> None:
        if not 0 < type_id < len(self.btf):
            raise self.fail(f"type id {type_id} outside the {len(self.btf)} types of .BTF", pos)

    def func(self, section: str, rec: tuple[int, ...], pos: int) -> FuncInfo:
        insn_off, type_id = rec
        self._type(type_id, pos)
        t = self.btf[type_id]
        if t.kind is not Kind.FUNC:
            raise self.fail(f"func_info names type [{type_id}], a {t.kind.name}, not a FUNC", pos)
        return FuncInfo(section, insn_off, type_id, t.name)

    def line(self, section: str, rec: tuple[int, ...], pos: int) -> LineRecord:
        insn_off, file_off, line_off, line_col = rec
        return LineRecord(section, insn_off, self.string(file_off, "file name", pos),
                          line_col >> 10, line_col & 0x3FF, self.string(line_off, "line text", pos),
                          file_off, line_off)

    def core(self, section: str, rec: tuple[int, ...], pos: int) -> CoreRelocation:
        insn_off, type_id, access_off, kind_no = rec
        self._type(type_id, pos)
        try:
            kind = CoreReloKind(kind_no)
        except ValueError:
            raise self.fail(f"unknown CO-RE relocation kind {kind_no}", pos) from None
        access = self.string(access_off, "access string", pos)
        return CoreRelocation(section, insn_off, type_id, access, kind,
                              _describe_access(self.btf, type_id, access, kind))


def _describe_access(btf: Btf, type_id: int, access: str, kind: CoreReloKind) -> str:
    """``struct task_struct.pid``-style spelling of what a relocation reads.
    Best effort for display: an accessor that does not fit the types is shown raw."""
    root = type_name(btf, type_id)
    parts = access.split(":")
    if len(parts) > MAX_ACCESS_COMPONENTS or not all(p.isdigit() for p in parts):
        return f"{root} <{access}>"
    indices = [int(p) for p in parts]
    if kind in (CoreReloKind.ENUMVAL_EXISTS, CoreReloKind.ENUMVAL_VALUE):
        t = btf[type_id]
        if isinstance(t, Enum) and indices[0] < len(t.values):
            return f"{root}::{t.values[indices[0]].name}"
        return f"{root} <{access}>"
    if kind in (CoreReloKind.TYPE_ID_LOCAL, CoreReloKind.TYPE_ID_TARGET, CoreReloKind.TYPE_EXISTS,
                CoreReloKind.TYPE_SIZE, CoreReloKind.TYPE_MATCHES):
        return root
    text = root if indices[0] == 0 else f"{root}[{indices[0]}]"
    try:
        current = skip_modifiers(btf, type_id)
        for index in indices[1:MAX_DEPTH]:
            if isinstance(current, Struct) and index < len(current.members):
                member = current.members[index]
                text += f".{member.name or '(anon)'}"
                current = skip_modifiers(btf, member.type)
            elif isinstance(current, Array):
                text += f"[{index}]"
                current = skip_modifiers(btf, current.type)
            else:
                return f"{root} <{access}>"
    except BtfError:
        return f"{root} <{access}>"
    return text
