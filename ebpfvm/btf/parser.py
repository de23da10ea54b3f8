"""Parse a .BTF section: header, type table, string table.

Every offset, length and count in the input is checked before use and every
loop is bounded by the bytes actually present, so hostile input ends in a
``BtfError`` naming the byte offset, never in an exception of another kind or
a long run.  Layout: Documentation/bpf/btf.rst (header, then ``type_len``
bytes of ``struct btf_type`` records each followed by its kind's extra data,
then ``str_len`` bytes of NUL-terminated strings; section offsets count from
the end of the header).
"""

from __future__ import annotations

import struct
from typing import Callable

from .errors import BtfError
from .types import (
    Array,
    Btf,
    BtfType,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Member,
    Param,
    Ptr,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)

MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")  # magic version flags hdr_len type_off type_len str_off str_len
_TYPE = struct.Struct("<III")  # name_off info size_or_type
_U32 = struct.Struct("<I")
_S32 = struct.Struct("<i")
_PAIR = struct.Struct("<II")
_TRIPLE = struct.Struct("<III")
_ENUM = struct.Struct("<Ii")
_ENUM64 = struct.Struct("<III")

# The kernel's own limits (kernel/bpf/btf.c): a larger table is refused there too.
MAX_TYPES = (1 << 20) - 1  # BTF_MAX_TYPE
MAX_VLEN = 0xFFFF


class StringTable:
    """The string section; ``get(off)`` is the NUL-terminated string at ``off``."""

    def __init__(self, data: bytes, section: str, base: int) -> None:
        self.data = data
        self.section = section
        self.base = base  # offset of the table in its section, for error messages
        self._cache: dict[int, str] = {}

    def get(self, off: int, what: str = "name") -> str:
        cached = self._cache.get(off)
        if cached is not None:
            return cached
        if not 0 <= off < len(self.data):
            raise BtfError(f"{what} offset {off} outside the string table ({len(self.data)} bytes)",
                           section=self.section, offset=self.base)
        end = self.data.find(b"\0", off)
        if end < 0:
            raise BtfError(f"string at {off} has no terminating NUL", section=self.section,
                           offset=self.base + off)
        text = self.data[off:end].decode("utf-8", errors="replace")
        self._cache[off] = text
        return text


def parse_btf(data: bytes) -> Btf:
    """The type table of a .BTF section (``BtfError`` if it is malformed)."""
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise BtfError(f"{len(data)} bytes is too short for a BTF header ({_HEADER.size})", offset=0)
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(data)
    if magic == 0x9FEB:
        raise BtfError("big-endian BTF is not supported", offset=0)
    if magic != MAGIC:
        raise BtfError(f"bad magic {magic:#06x} (expected {MAGIC:#06x})", offset=0)
    if version != 1:
        raise BtfError(f"unsupported BTF version {version}", offset=2)
    if hdr_len < _HEADER.size or hdr_len > len(data):
        raise BtfError(f"header length {hdr_len} outside 24..{len(data)}", offset=4)
    if any(data[_HEADER.size:hdr_len]):
        raise BtfError("unknown non-zero header fields", offset=_HEADER.size)
    body = len(data) - hdr_len
    for name, off, length, at in (("type", type_off, type_len, 8), ("string", str_off, str_len, 16)):
        if off > body or length > body - off:
            raise BtfError(f"{name} section [{off}, +{length}) outside the {body} bytes after the header",
                           offset=at)
    if type_off % 4:
        raise BtfError(f"type section offset {type_off} is not 4-byte aligned", offset=8)
    if type_off < str_off < type_off + type_len or str_off < type_off < str_off + str_len:
        raise BtfError("type and string sections overlap", offset=8)
    str_base = hdr_len + str_off
    strings = data[str_base:str_base + str_len]
    if strings and (strings[0] != 0 or strings[-1] != 0):
        raise BtfError("string section must start and end with NUL", offset=str_base)
    table = StringTable(strings, ".BTF", str_base)
    types, positions = _parse_types(data, hdr_len + type_off, type_len, table)
    _check_refs(types, hdr_len + type_off)
    return Btf(types, table, len(strings), version, flags, positions)


def _parse_types(data: bytes, start: int, length: int, strings: StringTable
                 ) -> tuple[tuple[BtfType, ...], tuple[int, ...]]:
    """The types and the byte offset of each one's record (-1 for void)."""
    types: list[BtfType] = [Void(0, "void")]
    positions = [-1]
    pos, end = start, start + length
    while pos < end:
        if len(types) > MAX_TYPES:
            raise BtfError(f"more than {MAX_TYPES} types", offset=pos)
        if end - pos < _TYPE.size:
            raise BtfError(f"truncated type record ({end - pos} bytes left)", offset=pos)
        name_off, info, size_or_type = _TYPE.unpack_from(data, pos)
        kind_no = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kind_flag = bool(info >> 31)
        try:
            kind = Kind(kind_no)
        except ValueError:
            raise BtfError(f"type [{len(types)}] has unknown kind {kind_no}", offset=pos) from None
        parse = _KIND_PARSERS.get(kind)
        if parse is None:
            raise BtfError(f"type [{len(types)}] has kind {kind.name}, which cannot appear in a table",
                           offset=pos)
        extra_size = _extra_size(kind, vlen)
        if extra_size > end - pos - _TYPE.size:
            raise BtfError(f"type [{len(types)}] ({kind.name}, vlen {vlen}) needs {extra_size} more bytes "
                           f"than the type section holds", offset=pos)
        ctx = _Record(len(types), strings.get(name_off) if name_off else "", vlen, kind_flag,
                      size_or_type, data, pos + _TYPE.size, strings, pos)
        types.append(parse(ctx))
        positions.append(pos)
        pos += _TYPE.size + extra_size
    return tuple(types), tuple(positions)


def _extra_size(kind: Kind, vlen: int) -> int:
    per_item = {Kind.STRUCT: 12, Kind.UNION: 12, Kind.ENUM: 8, Kind.ENUM64: 12, Kind.FUNC_PROTO: 8,
                Kind.DATASEC: 12}
    if kind in per_item:
        return per_item[kind] * vlen
    return {Kind.INT: 4, Kind.ARRAY: 12, Kind.VAR: 4, Kind.DECL_TAG: 4}.get(kind, 0)


class _Record:
    """What a kind's parser needs: the common fields and where its extra data is."""

    __slots__ = ("id", "name", "vlen", "kind_flag", "size_or_type", "data", "extra", "strings", "pos")

    def __init__(self, type_id: int, name: str, vlen: int, kind_flag: bool, size_or_type: int,
                 data: bytes, extra: int, strings: StringTable, pos: int) -> None:
        self.id = type_id
        self.name = name
        self.vlen = vlen
        self.kind_flag = kind_flag
        self.size_or_type = size_or_type
        self.data = data
        self.extra = extra
        self.strings = strings
        self.pos = pos

    def fail(self, message: str) -> BtfError:
        return BtfError(f"type [{self.id}] {self.name or '(anon)'}: {message}", offset=self.pos)

    def string(self, off: int) -> str:
        return self.strings.get(off) if off else ""

    def items(self, layout: struct.Struct) -> list[tuple[int, ...]]:
        return [layout.unpack_from(self.data, self.extra + i * layout.size) for i in range(self.vlen)]


def _int(r: _Record) -> BtfType:
    (word,) = _U32.unpack_from(r.data, r.extra)
    encoding, bit_offset, bits = (word >> 24) & 0x0F, (word >> 16) & 0xFF, word & 0xFF
    if r.size_or_type not in (1, 2, 4, 8, 16):
        raise r.fail(f"INT of size {r.size_or_type}")
    if bits == 0 or bit_offset + bits > 8 * r.size_or_type:
        raise r.fail(f"INT with {bits} bits at bit {bit_offset} does not fit in {r.size_or_type} bytes")
    return Int(r.id, r.name, r.size_or_type, encoding, bit_offset, bits)


def _ref(cls: type) -> Callable[[_Record], BtfType]:
    return lambda r: cls(r.id, r.name, r.size_or_type)


def _array(r: _Record) -> BtfType:
    elem, index_type, nelems = _TRIPLE.unpack_from(r.data, r.extra)
    return Array(r.id, r.name, elem, index_type, nelems)


def _composite(cls: type) -> Callable[[_Record], BtfType]:
    def parse(r: _Record) -> BtfType:
        members = []
        for name_off, member_type, offset in r.items(_TRIPLE):
            if r.kind_flag:  # bitfield size in the top 8 bits
                bit_offset, bitfield = offset & 0xFFFFFF, offset >> 24
            else:
                bit_offset, bitfield = offset, 0
            members.append(Member(r.string(name_off), member_type, bit_offset, bitfield))
        return cls(r.id, r.name, r.size_or_type, tuple(members))
    return parse


def _enum(r: _Record) -> BtfType:
    values = tuple(EnumValue(r.string(n), v) for n, v in r.items(_ENUM))
    if not r.kind_flag:  # unsigned enum: the s32 bits are a u32
        values = tuple(EnumValue(v.name, v.value & 0xFFFF_FFFF) for v in values)
    return Enum(r.id, r.name, r.size_or_type, values, r.kind_flag)


def _enum64(r: _Record) -> BtfType:
    values = []
    for name_off, lo, hi in r.items(_ENUM64):
        value = (hi << 32) | lo
        if r.kind_flag and value >> 63:
            value -= 1 << 64
        values.append(EnumValue(r.string(name_off), value))
    return Enum64(r.id, r.name, r.size_or_type, tuple(values), r.kind_flag)


def _func(r: _Record) -> BtfType:
    if r.vlen > 2:
        raise r.fail(f"FUNC with unknown linkage {r.vlen}")
    return Func(r.id, r.name, r.size_or_type, r.vlen)


def _func_proto(r: _Record) -> BtfType:
    params = tuple(Param(r.string(n), t) for n, t in r.items(_PAIR))
    return FuncProto(r.id, r.name, r.size_or_type, params)


def _var(r: _Record) -> BtfType:
    (linkage,) = _U32.unpack_from(r.data, r.extra)
    return Var(r.id, r.name, r.size_or_type, linkage)


def _datasec(r: _Record) -> BtfType:
    return Datasec(r.id, r.name, r.size_or_type, tuple(VarSecinfo(*item) for item in r.items(_TRIPLE)))


def _decl_tag(r: _Record) -> BtfType:
    (component,) = _S32.unpack_from(r.data, r.extra)
    return DeclTag(r.id, r.name, r.size_or_type, component)


_KIND_PARSERS: dict[Kind, Callable[[_Record], BtfType]] = {
    Kind.INT: _int,
    Kind.PTR: _ref(Ptr),
    Kind.ARRAY: _array,
    Kind.STRUCT: _composite(Struct),
    Kind.UNION: _composite(Union),
    Kind.ENUM: _enum,
    Kind.FWD: lambda r: Fwd(r.id, r.name, r.kind_flag),
    Kind.TYPEDEF: _ref(Typedef),
    Kind.VOLATILE: _ref(Volatile),
    Kind.CONST: _ref(Const),
    Kind.RESTRICT: _ref(Restrict),
    Kind.FUNC: _func,
    Kind.FUNC_PROTO: _func_proto,
    Kind.VAR: _var,
    Kind.DATASEC: _datasec,
    Kind.FLOAT: lambda r: Float(r.id, r.name, r.size_or_type),
    Kind.DECL_TAG: _decl_tag,
    Kind.TYPE_TAG: _ref(TypeTag),
    Kind.ENUM64: _enum64,
}


def _check_refs(types: tuple[BtfType, ...], type_section: int) -> None:
    """Every type id a type names must exist (loops are the resolver's business)."""
    count = len(types)
    for t in types:
        for ref in t.refs():
            if not 0 <= ref < count:
                raise BtfError(f"type [{t.id}] {t.name or '(anon)'} ({t.kind.name}) refers to type [{ref}], "
                               f"but there are only {count} types", offset=type_section)
