"""BTF types: one frozen dataclass per kind, and ``Btf``, the table of them.

Type ids are positions in the table; id 0 is ``void``.  Every type records
the ids it refers to in ``refs()`` so the parser can check all of them once
and the rest of the code can index the table without further checks.
Layouts follow the kernel's Documentation/bpf/btf.rst.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Iterator, Protocol


class Kind(IntEnum):
    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# BTF_INT_* encoding bits.
INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

# FUNC linkage (vlen of a FUNC) and VAR linkage.
LINKAGE_NAMES = {0: "static", 1: "global", 2: "extern"}


@dataclass(frozen=True)
class BtfType:
    id: int
    name: str
    kind: ClassVar[Kind] = Kind.VOID

    def refs(self) -> tuple[int, ...]:
        """Type ids this type refers to (checked by the parser)."""
        return ()


@dataclass(frozen=True)
class Void(BtfType):
    kind: ClassVar[Kind] = Kind.VOID


@dataclass(frozen=True)
class Int(BtfType):
    size: int
    encoding: int
    bit_offset: int
    bits: int
    kind: ClassVar[Kind] = Kind.INT

    @property
    def signed(self) -> bool:
        return bool(self.encoding & INT_SIGNED)


@dataclass(frozen=True)
class Float(BtfType):
    size: int
    kind: ClassVar[Kind] = Kind.FLOAT


@dataclass(frozen=True)
class _Ref(BtfType):
    """A kind that is just a reference to another type (plus maybe a name)."""

    type: int

    def refs(self) -> tuple[int, ...]:
        return (self.type,)


@dataclass(frozen=True)
class Ptr(_Ref):
    kind: ClassVar[Kind] = Kind.PTR


@dataclass(frozen=True)
class Typedef(_Ref):
    kind: ClassVar[Kind] = Kind.TYPEDEF


@dataclass(frozen=True)
class Volatile(_Ref):
    kind: ClassVar[Kind] = Kind.VOLATILE


@dataclass(frozen=True)
class Const(_Ref):
    kind: ClassVar[Kind] = Kind.CONST


@dataclass(frozen=True)
class Restrict(_Ref):
    kind: ClassVar[Kind] = Kind.RESTRICT


@dataclass(frozen=True)
class TypeTag(_Ref):
    kind: ClassVar[Kind] = Kind.TYPE_TAG


@dataclass(frozen=True)
class Func(_Ref):
    """A function; ``type`` is its FUNC_PROTO."""

    linkage: int = 0
    kind: ClassVar[Kind] = Kind.FUNC


@dataclass(frozen=True)
class Var(_Ref):
    linkage: int = 0
    kind: ClassVar[Kind] = Kind.VAR


@dataclass(frozen=True)
class DeclTag(_Ref):
    """A tag on ``type`` (or on its member/parameter ``component_idx``; -1: the type itself)."""

    component_idx: int = -1
    kind: ClassVar[Kind] = Kind.DECL_TAG


@dataclass(frozen=True)
class Array(BtfType):
    type: int
    index_type: int
    nelems: int
    kind: ClassVar[Kind] = Kind.ARRAY

    def refs(self) -> tuple[int, ...]:
        return (self.type, self.index_type)


@dataclass(frozen=True)
class Member:
    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0  # 0: not a bitfield


@dataclass(frozen=True)
class Struct(BtfType):
    size: int
    members: tuple[Member, ...]
    kind: ClassVar[Kind] = Kind.STRUCT

    def refs(self) -> tuple[int, ...]:
        return tuple(m.type for m in self.members)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True)
class Union(Struct):
    kind: ClassVar[Kind] = Kind.UNION


@dataclass(frozen=True)
class EnumValue:
    name: str
    value: int


@dataclass(frozen=True)
class Enum(BtfType):
    size: int
    values: tuple[EnumValue, ...]
    signed: bool = False
    kind: ClassVar[Kind] = Kind.ENUM


@dataclass(frozen=True)
class Enum64(Enum):
    kind: ClassVar[Kind] = Kind.ENUM64


@dataclass(frozen=True)
class Fwd(BtfType):
    is_union: bool
    kind: ClassVar[Kind] = Kind.FWD


@dataclass(frozen=True)
class Param:
    name: str
    type: int


@dataclass(frozen=True)
class FuncProto(BtfType):
    return_type: int
    params: tuple[Param, ...]
    kind: ClassVar[Kind] = Kind.FUNC_PROTO

    def refs(self) -> tuple[int, ...]:
        return (self.return_type, *(p.type for p in self.params))


@dataclass(frozen=True)
class VarSecinfo:
    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class Datasec(BtfType):
    size: int
    vars: tuple[VarSecinfo, ...]
    kind: ClassVar[Kind] = Kind.DATASEC

    def refs(self) -> tuple[int, ...]:
        return tuple(v.type for v in self.vars)


# Kinds that only qualify another type: skipped to find what a type "is".
MODIFIER_KINDS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})


class StringLookup(Protocol):
    def get(self, off: int, what: str = "name") -> str: ...


class Btf:
    """The parsed type table of one .BTF section: ``btf[id]`` is a ``BtfType``."""

    def __init__(self, types: tuple[BtfType, ...], strings: "StringLookup | None" = None,
                 strings_size: int = 0, version: int = 1, flags: int = 0,
                 positions: tuple[int, ...] = ()) -> None:
        self.types = types
        # Byte offset of each type's record in the section (for patching a copy).
        self.positions = positions
        # .BTF.ext records name files, lines and accessors by offsets into this table.
        self.strings = strings
        self.strings_size = strings_size
        self.version = version
        self.flags = flags
        self._by_name: dict[str, list[BtfType]] | None = None

    def __len__(self) -> int:
        return len(self.types)

    def __getitem__(self, type_id: int) -> BtfType:
        return self.types[type_id]

    def __iter__(self) -> Iterator[BtfType]:
        return iter(self.types)

    def find(self, name: str, kind: Kind | None = None) -> BtfType | None:
        """The first type called ``name`` (of ``kind``, if given)."""
        if self._by_name is None:
            index: dict[str, list[BtfType]] = {}
            for t in self.types:
                if t.name:
                    index.setdefault(t.name, []).append(t)
            self._by_name = index
        for t in self._by_name.get(name, ()):
            if kind is None or t.kind is kind:
                return t
        return None

    def count_by_kind(self) -> dict[Kind, int]:
        counts: dict[Kind, int] = {}
        for t in self.types[1:]:
            counts[t.kind] = counts.get(t.kind, 0) + 1
        return counts
