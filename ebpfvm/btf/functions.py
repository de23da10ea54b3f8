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


def _kind_text(t) -> str:  # type: ignore[no-untyped-def]
    """A type as the kernel's messages name it (``btf_type_str`` and the name:
    "STRUCT __sk_buff", "INT unsigned char", "UNKNOWN " for void)."""
    return f"{'UNKNOWN' if t.kind is Kind.VOID else t.kind.name} {t.name}"


def _is_scalar(btf: Btf, type_id: int) -> bool:
    return type_id != 0 and isinstance(skip_modifiers(btf, type_id), (Int, Enum))


def _param(btf: Btf, type_id: int) -> FunctionParam:
    if type_id == 0:
        return FunctionParam("other")
    t = skip_modifiers(btf, type_id)
    if isinstance(t, (Int, Enum)):
        return FunctionParam("scalar")
    if not isinstance(t, Ptr):
        return FunctionParam("other", _kind_text(t))
    if t.type == 0:
        return FunctionParam("pointer", "UNKNOWN ", None)  # void
    target = skip_modifiers(btf, t.type)
    try:
        size: int | None = type_size(btf, t.type)
    except BtfError:
        size = None
    return FunctionParam("pointer", _kind_text(target), size)


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
