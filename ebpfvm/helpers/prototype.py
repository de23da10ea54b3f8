"""Helper prototypes: what each argument register must hold and what r0 returns.

A placeholder the verifier issues will fill in: the kinds mirror the kernel's
``enum bpf_arg_type`` / ``enum bpf_return_type`` (include/linux/bpf.h), so a
prototype here reads like the kernel's ``struct bpf_func_proto``. The
interpreter does not look at prototypes; the verifier will.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, Flag


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
    PTR_TO_CONST_STR = "ARG_PTR_TO_CONST_STR"  # NUL-terminated string in a read-only map value
    PTR_TO_SPIN_LOCK = "ARG_PTR_TO_SPIN_LOCK"  # the bpf_spin_lock field of a map value
    CONST_ALLOC_SIZE_OR_ZERO = "ARG_CONST_ALLOC_SIZE_OR_ZERO"  # size of memory the helper allocates
    PTR_TO_ALLOC_MEM = "ARG_PTR_TO_ALLOC_MEM"  # memory a helper allocated (a ringbuf record)


class ArgFlag(Flag):
    """Modifiers the kernel ORs into an ``enum bpf_arg_type`` (``PTR_MAYBE_NULL``,
    ``MEM_RDONLY``, ...): ``ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY`` is
    ``ArgKind.PTR_TO_MEM`` with ``ArgFlag.MAYBE_NULL | ArgFlag.RDONLY``."""

    NONE = 0
    MAYBE_NULL = 1  # PTR_MAYBE_NULL: NULL is accepted too (ARG_PTR_TO_MEM_OR_NULL)
    RDONLY = 2  # MEM_RDONLY: the helper only reads the memory (read-only maps allowed)
    UNINIT = 4  # MEM_UNINIT: the helper writes the memory before reading it
    WRITE = 8  # MEM_WRITE: the helper writes the memory
    RELEASE = 16  # OBJ_RELEASE: the helper releases the reference the argument holds


class RetKind(Enum):
    INTEGER = "RET_INTEGER"
    VOID = "RET_VOID"
    PTR_TO_MAP_VALUE_OR_NULL = "RET_PTR_TO_MAP_VALUE_OR_NULL"
    PTR_TO_MEM_OR_NULL = "RET_PTR_TO_MEM_OR_NULL"
    PTR_TO_ALLOC_MEM_OR_NULL = "RET_PTR_TO_ALLOC_MEM_OR_NULL"  # a new reference (ringbuf record) or NULL


@dataclass(frozen=True)
class Prototype:
    """Argument kinds for r1..r5 (only as many as the helper takes) and the
    kind of r0 on return. ``gpl_only`` as in the kernel. ``arg_flags``, when
    given, holds one ``ArgFlag`` per argument (the modifiers of the kernel's
    arg type); empty means none anywhere."""

    ret: RetKind = RetKind.INTEGER
    args: tuple[ArgKind, ...] = ()
    gpl_only: bool = False
    arg_flags: tuple[ArgFlag, ...] = ()

    def __post_init__(self) -> None:
        if len(self.args) > 5:
            raise ValueError(f"a helper takes at most 5 arguments, got {len(self.args)}")
        if self.arg_flags and len(self.arg_flags) != len(self.args):
            raise ValueError(f"{len(self.arg_flags)} arg_flags for {len(self.args)} arguments")

    def flags(self, index: int) -> ArgFlag:
        """The modifiers of argument ``index`` (0 for r1)."""
        return self.arg_flags[index] if self.arg_flags else ArgFlag.NONE


# Until the verifier issues describe each helper: "takes anything, returns a scalar".
UNKNOWN_PROTOTYPE = Prototype(RetKind.INTEGER, (ArgKind.ANYTHING,) * 5)
