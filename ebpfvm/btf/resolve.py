"""Questions about BTF types that follow references: sizes, what a type
really is behind typedefs and qualifiers, and C-like names.

BTF from a hostile file may loop (a typedef naming itself through a const)
or nest arrays absurdly deep; every walk here is bounded by ``MAX_DEPTH``
(the kernel's MAX_RESOLVE_DEPTH) and ends in a ``BtfError`` instead.
"""

from __future__ import annotations

from .errors import BtfError
from .types import (
    MODIFIER_KINDS,
    Array,
    Btf,
    BtfType,
    Datasec,
    Enum,
    Float,
    FuncProto,
    Int,
    Kind,
    Ptr,
    Struct,
    Var,
)

MAX_DEPTH = 32
MAX_SIZE = 0xFFFF_FFFF  # sizes are u32 in BTF and in the kernel's map attributes
POINTER_SIZE = 8


def _loop_error(btf: Btf, type_id: int) -> BtfError:
    t = btf[type_id]
    return BtfError(f"type [{type_id}] {t.name or '(anon)'}: reference chain longer than {MAX_DEPTH} "
                    f"(a type loop?)")


def skip_modifiers(btf: Btf, type_id: int) -> BtfType:
    """The type behind typedefs, const, volatile, restrict and type tags."""
    current = btf[type_id]
    for _ in range(MAX_DEPTH):
        if current.kind not in MODIFIER_KINDS:
            return current
        current = btf[current.type]  # type: ignore[attr-defined]
    raise _loop_error(btf, type_id)


def type_size(btf: Btf, type_id: int) -> int:
    """Size in bytes of type ``type_id`` (arrays multiplied out, modifiers followed).

    ``BtfError`` for types without a size (void, functions, forward
    declarations), loops, and sizes beyond u32."""
    factor = 1
    current = type_id
    for _ in range(MAX_DEPTH):
        t = btf[current]
        if t.kind in MODIFIER_KINDS or isinstance(t, Var):
            current = t.type  # type: ignore[attr-defined]
            continue
        if isinstance(t, Array):
            factor *= t.nelems
            if factor > MAX_SIZE:  # keep the product small even for absurd nesting
                factor = MAX_SIZE + 1
            current = t.type
            continue
        if isinstance(t, Ptr):
            size = POINTER_SIZE
        elif isinstance(t, (Int, Float, Enum, Struct, Datasec)):
            size = t.size
        else:
            raise BtfError(f"type [{type_id}] {t.name or '(anon)'}: {t.kind.name} has no size")
        total = size * factor
        if total > MAX_SIZE:
            raise BtfError(f"type [{type_id}] {btf[type_id].name or '(anon)'}: size {total} exceeds u32")
        return total
    raise _loop_error(btf, type_id)


_TAGGED = {Kind.STRUCT: "struct", Kind.UNION: "union", Kind.ENUM: "enum", Kind.ENUM64: "enum"}
_QUALIFIERS = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}


def type_name(btf: Btf, type_id: int) -> str:
    """A C-like spelling of a type for people: ``struct ipv4_lpm_key``,
    ``__u32``, ``const char *``, ``__u64[4]``.  Never raises: a chain too
    long to print ends in ``...``."""
    return _name(btf, type_id, MAX_DEPTH)


def _name(btf: Btf, type_id: int, depth: int) -> str:
    if depth <= 0:
        return "..."
    if not 0 <= type_id < len(btf):
        return f"<bad type {type_id}>"
    t = btf[type_id]
    if t.kind is Kind.VOID:
        return "void"
    if t.kind in _TAGGED:
        return f"{_TAGGED[t.kind]} {t.name or '(anon)'}"
    if t.kind is Kind.FWD:
        return f"{'union' if t.is_union else 'struct'} {t.name}"  # type: ignore[attr-defined]
    if t.kind in _QUALIFIERS:
        return f"{_QUALIFIERS[t.kind]} {_name(btf, t.type, depth - 1)}"  # type: ignore[attr-defined]
    if isinstance(t, Ptr):
        inner = _name(btf, t.type, depth - 1)
        return inner + ("*" if inner.endswith("*") else " *")
    if isinstance(t, Array):
        return f"{_name(btf, t.type, depth - 1)}[{t.nelems}]"
    if isinstance(t, FuncProto):
        params = ", ".join(_name(btf, p.type, depth - 1) for p in t.params) or "void"
        return f"{_name(btf, t.return_type, depth - 1)} (*)({params})"
    if t.name:
        return t.name  # int, float, typedef, func, var, datasec, type tag
    return f"({t.kind.name.lower()})"


def spin_lock_offset(btf: Btf, type_id: int) -> int | None:
    """Byte offset of the ``struct bpf_spin_lock`` member of a map value type,
    or None: what enables ``BPF_F_LOCK`` updates and bpf_spin_lock on the value.
    Like the kernel, only a direct member of the value struct counts."""
    if not type_id:
        return None
    value = skip_modifiers(btf, type_id)
    if value.kind is not Kind.STRUCT:
        return None
    for member in value.members:  # type: ignore[attr-defined]
        target = skip_modifiers(btf, member.type)
        if target.kind is Kind.STRUCT and target.name == "bpf_spin_lock":
            return member.bit_offset // 8
    return None
