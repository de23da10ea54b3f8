"""Helper prototypes: what each argument register must hold and what r0 returns.

A placeholder the verifier issues will fill in: the kinds mirror the kernel's
``enum bpf_arg_type`` / ``enum bpf_return_type`` (include/linux/bpf.h), so a
prototype here reads like the kernel's ``struct bpf_func_proto``. The
interpreter does not look at prototypes; the verifier will.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ArgKind(Enum):
    DONTCARE = "ARG_DONTCARE"  # unused argument register
    ANYTHING = "ARG_ANYTHING"  # any initialised scalar or pointer
    CONST_MAP_PTR = "ARG_CONST_MAP_PTR"
    PTR_TO_MAP_KEY = "ARG_PTR_TO_MAP_KEY"
    PTR_TO_MAP_VALUE = "ARG_PTR_TO_MAP_VALUE"
    PTR_TO_MEM = "ARG_PTR_TO_MEM"
    PTR_TO_UNINIT_MEM = "ARG_PTR_TO_UNINIT_MEM"
    CONST_SIZE = "ARG_CONST_SIZE"
    CONST_SIZE_OR_ZERO = "ARG_CONST_SIZE_OR_ZERO"
    PTR_TO_CTX = "ARG_PTR_TO_CTX"
    PTR_TO_FUNC = "ARG_PTR_TO_FUNC"
    PTR_TO_STACK = "ARG_PTR_TO_STACK"


class RetKind(Enum):
    INTEGER = "RET_INTEGER"
    VOID = "RET_VOID"
    PTR_TO_MAP_VALUE_OR_NULL = "RET_PTR_TO_MAP_VALUE_OR_NULL"
    PTR_TO_MEM_OR_NULL = "RET_PTR_TO_MEM_OR_NULL"


@dataclass(frozen=True)
class Prototype:
    """Argument kinds for r1..r5 (only as many as the helper takes) and the
    kind of r0 on return. ``gpl_only`` as in the kernel."""

    ret: RetKind = RetKind.INTEGER
    args: tuple[ArgKind, ...] = ()
    gpl_only: bool = False

    def __post_init__(self) -> None:
        if len(self.args) > 5:
            raise ValueError(f"a helper takes at most 5 arguments, got {len(self.args)}")


# Until the verifier issues describe each helper: "takes anything, returns a scalar".
UNKNOWN_PROTOTYPE = Prototype(RetKind.INTEGER, (ArgKind.ANYTHING,) * 5)
