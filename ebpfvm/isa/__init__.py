"""The eBPF instruction set (RFC 9669): opcode fields, instruction slots, validity rules."""

from .alu import AluOp
from .forms import FORMS, Form, Kind
from .instruction import SLOT_SIZE, Instruction, lddw_pair, lddw_value, to_s32
from .jump import CallKind, JmpOp
from .load_store import SIZE_BYTES, AtomicOp, LddwSource, Mode, Size
from .opcode import InsnClass, Source, insn_class
from .targets import branch_target, slot_target, target_field
from .validate import find_issues, lddw_tails

__all__ = [
    "AluOp", "AtomicOp", "CallKind", "FORMS", "Form", "InsnClass", "Instruction", "JmpOp", "Kind",
    "LddwSource", "Mode", "SIZE_BYTES", "SLOT_SIZE", "Size", "Source", "branch_target", "find_issues", "slot_target", "target_field",
    "insn_class", "lddw_pair", "lddw_tails", "lddw_value", "to_s32",
]
