"""Pre-decoding: one ``Op`` closure per instruction slot, built from a table
keyed by opcode.

``OPCODE_BUILDERS`` maps every valid opcode byte (``isa.FORMS``) to the
builder of its kind; builders that cover several operations (ALU, jumps,
atomics) look the operation up in their own tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ProgramFault
from ..isa.forms import FORMS, Kind
from ..isa.validate import lddw_tails
from ..program import Program
from . import alu, atomics, jumps, load_store
from .faults import FellOffEnd
from .ops import Builder, Op

if TYPE_CHECKING:
    from .machine import Machine

KIND_BUILDERS: dict[Kind, Builder] = {
    Kind.ALU: alu.build_alu,
    Kind.NEG: alu.build_neg,
    Kind.END: alu.build_end,
    Kind.JA: jumps.build_ja,
    Kind.JUMP: jumps.build_jump,
    Kind.CALL: jumps.build_call,
    Kind.CALLX: jumps.build_callx,
    Kind.EXIT: jumps.build_exit,
    Kind.LOAD: load_store.build_load,
    Kind.LOAD_SX: load_store.build_load_sx,
    Kind.STORE_IMM: load_store.build_store_imm,
    Kind.STORE_REG: load_store.build_store_reg,
    Kind.ATOMIC: atomics.build_atomic,
    Kind.LDDW: load_store.build_lddw,
    Kind.LD_ABS: load_store.build_ld_abs,
    Kind.LD_IND: load_store.build_ld_ind,
}

OPCODE_BUILDERS: dict[int, Builder] = {opcode: KIND_BUILDERS[form.kind] for opcode, form in FORMS.items()}


def decode(program: Program, machine: "Machine") -> list[Op]:
    """The ops of every slot, plus one past the end that faults: reaching it
    means execution fell off the end. ``program`` must be well formed."""
    tails = lddw_tails(program.instructions)
    code: list[Op] = []
    for pc, insn in enumerate(program.instructions):
        if pc in tails:
            code.append(_lddw_tail(pc))
        else:
            code.append(OPCODE_BUILDERS[insn.opcode](insn, pc, machine))
    code.append(_fell_off(len(program)))
    return code


def _lddw_tail(pc: int) -> Op:
    # Unreachable in a well-formed program (Program.check rejects jumps there).
    def lddw_tail() -> int:
        raise ProgramFault("executed the second slot of an lddw", pc)
    return lddw_tail


def _fell_off(length: int) -> Op:
    def fell_off() -> int:
        raise FellOffEnd(length, length)
    return fell_off
