"""A program's functions as BTF describes them (``Program.functions``): where
each starts (.BTF.ext func_info), its linkage and its prototype's parameter
and return kinds -- what the verifier needs to check a global function on its
own and its callers against the prototype."""

from __future__ import annotations

from collections.abc import Iterable

from ebpfvm.program import FunctionInfo, FunctionParam

from .errors import BtfError
from .resolve import skip_modifiers, type_size
from .types import Btf, Enum, Func, FuncProto, Int, Kind, Ptr

GLOBAL_LINKAGE = 1
# The kernel's btf_type_str names (its "reference type('%s %s')" messages).
_KIND_WORDS = {Kind.STRUCT: "struct", Kind.UNION: "union", Kind.ENUM: "enum", Kind.ENUM64: "enum64",
               Kind.FWD: "fwd", Kind.FUNC_PROTO: "func_proto", Kind.FUNC: "func", Kind.INT: "int",
               Kind.PTR: "ptr", Kind.ARRAY: "array", Kind.FLOAT: "float", Kind.TYPEDEF: "typedef"}


def _is_scalar(btf: Btf, type_id: int) -> bool:
    return type_id != 0 and isinstance(skip_modifiers(btf, type_id), (Int, Enum))


def _param(btf: Btf, type_id: int) -> FunctionParam:
    if type_id == 0:
        return FunctionParam("other")
    t = skip_modifiers(btf, type_id)
    if isinstance(t, (Int, Enum)):
        return FunctionParam("scalar")
    if not isinstance(t, Ptr):
        return FunctionParam("other", f"{_KIND_WORDS.get(t.kind, 'UNKNOWN')} {t.name}")
    if t.type == 0:
        return FunctionParam("pointer", "UNKNOWN ", None)  # (btf_type_str of void)
    target = skip_modifiers(btf, t.type)
    try:
        size: int | None = type_size(btf, t.type)
    except BtfError:
        size = None
    return FunctionParam("pointer", f"{_KIND_WORDS.get(target.kind, 'UNKNOWN')} {target.name}", size)


def describe_functions(btf: Btf, func_info: Iterable[tuple[int, int]]) -> tuple[FunctionInfo, ...]:
    """``func_info`` is (first slot, BTF FUNC id) per function. Functions
    whose BTF does not describe a FUNC with a prototype are left out."""
    out = []
    for insn, type_id in func_info:
        try:
            func = btf[type_id]
            if not isinstance(func, Func):
                continue
            proto = btf[func.type]
            if not isinstance(proto, FuncProto):
                continue
            params = tuple(_param(btf, p.type) for p in proto.params)
            out.append(FunctionInfo(insn, func.name, func.linkage == GLOBAL_LINKAGE, params,
                                    _is_scalar(btf, proto.return_type)))
        except (BtfError, IndexError):
            continue
    return tuple(out)
