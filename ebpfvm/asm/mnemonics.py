"""The one mnemonic table of the assembler dialect, used in both directions.

Each ``Entry`` ties a spelling and an operand list to an opcode plus the
field values that pick this variant among those sharing the opcode (``off``
for sdiv/smod and movsx, ``imm`` for byte swaps and atomics, ``src`` for the
kinds of call). The assembler looks entries up by name and chooses among
same-named ones (``add %r0, 1`` vs ``add %r0, %r1``) by operand shape; the
printer looks them up by instruction. Every instruction the ISA's ``FORMS``
table accepts matches exactly one entry, which is what makes
``assemble(disassemble(p))`` reproduce ``p`` byte for byte.

The spellings are those of the bpf_conformance suite's ``.data`` files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..isa import AluOp, AtomicOp, CallKind, InsnClass, Instruction, JmpOp, LddwSource, Mode, Size, Source
from ..isa.alu import MOVSX_WIDTHS_32, MOVSX_WIDTHS_64, SIGNED_DIVISION_OFFSET, SWAP_WIDTHS
from ..isa.jump import CONDITIONAL_JUMPS
from ..isa.load_store import LDDW_OPCODE


class Operand(Enum):
    """What one comma-separated operand looks like and which field it fills."""

    DST = "%rD"
    SRC = "%rS"
    IMM = "imm"
    HELPER = "helper"  # a helper id, or a helper's name
    DST_MEM = "[%rD+off]"
    SRC_MEM = "[%rS+off]"
    OFF_TARGET = "target"  # label or +N, stored in ``off``
    IMM_TARGET = "target32"  # label or +N, stored in ``imm``
    LDDW = "imm64"  # a 64-bit value, or a pseudo source; may take a second operand


@dataclass(frozen=True)
class Entry:
    name: str
    opcode: int
    operands: tuple[Operand, ...]
    # Field values that distinguish this entry from others with the same opcode.
    fixed: tuple[tuple[str, int], ...] = ()

    def matches(self, insn: Instruction) -> bool:
        return insn.opcode == self.opcode and all(getattr(insn, f) == v for f, v in self.fixed)

    @property
    def syntax(self) -> str:
        """How to write it, for error messages: ``add %rD, imm``."""
        if not self.operands:
            return self.name
        return f"{self.name} " + ", ".join(op.value for op in self.operands)


# Suffix naming the 32-bit variant; the 64-bit one has none.
WIDTH_SUFFIX = {InsnClass.ALU64: "", InsnClass.ALU: "32", InsnClass.JMP: "", InsnClass.JMP32: "32"}
SIZE_SUFFIX = {Size.B: "b", Size.H: "h", Size.W: "w", Size.DW: "dw"}
ATOMIC_SUFFIX = {Size.DW: "", Size.W: "32"}

# Keywords naming lddw's pseudo sources (``lddw %r1, map_fd 3``); src 0 is a plain number.
LDDW_KEYWORDS: dict[str, LddwSource] = {s.name.lower(): s for s in LddwSource if s is not LddwSource.IMM64}
LDDW_KEYWORD_OF: dict[int, str] = {int(s): k for k, s in LDDW_KEYWORDS.items()}

# Spellings the assembler accepts but never prints.
ALIASES: dict[str, str] = {
    "swap16": "bswap16", "swap32": "bswap32", "swap64": "bswap64",  # bpf_conformance
    "callx": "call",  # LLVM spells ``call %r2`` this way
    "call helper": "call", "call runtime": "call kfunc",  # bpf_conformance's explicit call modes
}

# Mnemonics are at most this many words (``lock fetch add32``).
MAX_MNEMONIC_WORDS = 3


def _build() -> list[Entry]:
    entries: list[Entry] = []

    def add(name: str, opcode: int, *operands: Operand, **fixed: int) -> None:
        entries.append(Entry(name, int(opcode), operands, tuple(sorted((f, int(v)) for f, v in fixed.items()))))

    D, S, I = Operand.DST, Operand.SRC, Operand.IMM
    for cls in (InsnClass.ALU64, InsnClass.ALU):
        sfx = WIDTH_SUFFIX[cls]
        for op in AluOp:
            k, x = cls | op | Source.K, cls | op | Source.X
            if op is AluOp.NEG:
                add(f"neg{sfx}", k, D)
            elif op is AluOp.END:
                for width in SWAP_WIDTHS:
                    if cls is InsnClass.ALU:  # the source bit picks the byte order
                        add(f"le{width}", k, D, imm=width)
                        add(f"be{width}", x, D, imm=width)
                    else:
                        add(f"bswap{width}", k, D, imm=width)
            else:
                name = op.name.lower()
                add(f"{name}{sfx}", k, D, I, off=0)
                add(f"{name}{sfx}", x, D, S, off=0)
                if op in (AluOp.DIV, AluOp.MOD):
                    add(f"s{name}{sfx}", k, D, I, off=SIGNED_DIVISION_OFFSET)
                    add(f"s{name}{sfx}", x, D, S, off=SIGNED_DIVISION_OFFSET)
                if op is AluOp.MOV:
                    bits = "64" if cls is InsnClass.ALU64 else "32"
                    for width in (MOVSX_WIDTHS_64 if cls is InsnClass.ALU64 else MOVSX_WIDTHS_32):
                        add(f"movsx{width}{bits}", x, D, S, off=width)

    add("ja", InsnClass.JMP | JmpOp.JA, Operand.OFF_TARGET)
    add("ja32", InsnClass.JMP32 | JmpOp.JA, Operand.IMM_TARGET)
    for cls in (InsnClass.JMP, InsnClass.JMP32):
        for jump in CONDITIONAL_JUMPS:
            name = jump.name.lower() + WIDTH_SUFFIX[cls]
            add(name, cls | jump | Source.K, D, I, Operand.OFF_TARGET)
            add(name, cls | jump | Source.X, D, S, Operand.OFF_TARGET)
    call = InsnClass.JMP | JmpOp.CALL
    add("call", call, Operand.HELPER, src=CallKind.HELPER)
    add("call local", call, Operand.IMM_TARGET, src=CallKind.LOCAL)
    add("call kfunc", call, I, src=CallKind.KFUNC)
    add("call", call | Source.X, D)  # callx: the helper id is in a register
    add("exit", InsnClass.JMP | JmpOp.EXIT)

    for size, sfx in SIZE_SUFFIX.items():
        add(f"ldx{sfx}", InsnClass.LDX | Mode.MEM | size, D, Operand.SRC_MEM)
        add(f"st{sfx}", InsnClass.ST | Mode.MEM | size, Operand.DST_MEM, I)
        add(f"stx{sfx}", InsnClass.STX | Mode.MEM | size, Operand.DST_MEM, S)
        if size is not Size.DW:
            add(f"ldxs{sfx}", InsnClass.LDX | Mode.MEMSX | size, D, Operand.SRC_MEM)
            add(f"ldabs{sfx}", InsnClass.LD | Mode.ABS | size, I)
            add(f"ldind{sfx}", InsnClass.LD | Mode.IND | size, S, I)
    for size, sfx in ATOMIC_SUFFIX.items():
        for atomic in AtomicOp:
            name = "lock " + atomic.name.lower().replace("_", " ") + sfx
            add(name, InsnClass.STX | Mode.ATOMIC | size, Operand.DST_MEM, S, imm=atomic)
    add("lddw", LDDW_OPCODE, D, Operand.LDDW)
    return entries


ENTRIES: tuple[Entry, ...] = tuple(_build())

_BY_NAME: dict[str, list[Entry]] = {}
_BY_OPCODE: dict[int, list[Entry]] = {}
for _entry in ENTRIES:
    _BY_NAME.setdefault(_entry.name, []).append(_entry)
    _BY_OPCODE.setdefault(_entry.opcode, []).append(_entry)


def entries_named(name: str) -> list[Entry]:
    """Every entry spelled ``name`` (aliases resolved); empty if it is no mnemonic."""
    return _BY_NAME.get(ALIASES.get(name, name), [])


def entry_for(insn: Instruction) -> Entry | None:
    """The entry that prints ``insn``, or None if no spelling encodes it."""
    for entry in _BY_OPCODE.get(insn.opcode, ()):
        if entry.matches(insn):
            return entry
    return None


def is_mnemonic(name: str) -> bool:
    return bool(entries_named(name))
