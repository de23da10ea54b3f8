"""Printing one instruction the way the kernel's verifier log and
``bpftool prog dump xlated`` do (``print_bpf_insn`` in kernel/bpf/disasm.c).

The kernel decodes by opcode structure alone and prints whatever the fields
hold, so this printer never needs the slot to be valid. Formatting follows the
kernel's printf choices: ALU and store immediates in signed decimal (``%d``),
conditional-jump immediates as unsigned hex (``0x%x``), offsets with an
explicit sign (``%+d``), lddw values as ``0x%llx``.

Where the kernel has no wording this module chooses one, documented at the
spot: ``callx rN`` (LLVM's spelling; the kernel would print
``call bpf_unspec#0``) and the lddw pseudo sources, which follow bpftool's
``map[id:N]`` form but say ``fd`` or ``idx`` since nothing here resolves fds
to map ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..helpers.ids import HELPER_NAMES, UNKNOWN_HELPER
from ..isa import AluOp, AtomicOp, CallKind, InsnClass, Instruction, JmpOp, LddwSource, Mode, Size, Source
from ..isa.alu import SIGNED_DIVISION_OFFSET
from ..isa.opcode import CLASS_MASK, MODE_MASK, OPERATION_MASK, SIZE_MASK, SOURCE_MASK

# A NULL string in the kernel's tables prints as this.
NULL = "(null)"

ALU_OPERATOR: dict[int, str] = {
    AluOp.ADD: "+=", AluOp.SUB: "-=", AluOp.MUL: "*=", AluOp.DIV: "/=", AluOp.OR: "|=", AluOp.AND: "&=",
    AluOp.LSH: "<<=", AluOp.RSH: ">>=", AluOp.NEG: "neg", AluOp.MOD: "%=", AluOp.XOR: "^=", AluOp.MOV: "=",
    AluOp.ARSH: "s>>=", AluOp.END: "endian",
}
SIGNED_ALU_OPERATOR: dict[int, str] = {AluOp.DIV: "s/=", AluOp.MOD: "s%="}
MOVSX_CAST: dict[int, str] = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
ADDR_SPACE_CAST_OFF = 1  # BPF_ADDR_SPACE_CAST: kernel-internal arena pointer cast
PERCPU_ADDR_OFF = -1  # BPF_ADDR_PERCPU: kernel-internal per-CPU address

JUMP_OPERATOR: dict[int, str] = {
    JmpOp.JA: "jmp", JmpOp.JEQ: "==", JmpOp.JGT: ">", JmpOp.JLT: "<", JmpOp.JGE: ">=", JmpOp.JLE: "<=",
    JmpOp.JSET: "&", JmpOp.JNE: "!=", JmpOp.JSGT: "s>", JmpOp.JSLT: "s<", JmpOp.JSGE: "s>=", JmpOp.JSLE: "s<=",
    JmpOp.CALL: "call", JmpOp.EXIT: "exit",
}
JCOND = 0xE0  # BPF_JCOND: may_goto when src is 0
GOTOX = InsnClass.JMP | JmpOp.JA | Source.X  # indirect jump through a register

LOAD_TYPE: dict[int, str] = {Size.W: "u32", Size.H: "u16", Size.B: "u8", Size.DW: "u64"}
SIGNED_LOAD_TYPE: dict[int, str] = {Size.W: "s32", Size.H: "s16", Size.B: "s8"}

ATOMIC_NAME: dict[int, str] = {AluOp.ADD: "add", AluOp.AND: "and", AluOp.OR: "or", AluOp.XOR: "xor"}
ATOMIC_ALU = {AtomicOp.ADD, AtomicOp.AND, AtomicOp.OR, AtomicOp.XOR}
ATOMIC_FETCH_ALU = {AtomicOp.FETCH_ADD, AtomicOp.FETCH_AND, AtomicOp.FETCH_OR, AtomicOp.FETCH_XOR}
LOAD_ACQUIRE = 0x100
STORE_RELEASE = 0x110
NOSPEC_MODE = 0xC0  # BPF_NOSPEC in class ST, kernel-internal

KFUNC_NAME = "kernel-function"


def format_kernel(insns: Sequence[Instruction], pc: int) -> tuple[bool, str]:
    """The kernel's text for slot ``pc``, and whether the kernel puts the
    ``(opcode) `` prefix before it (its ``BUG_...`` lines have none)."""
    insn = insns[pc]
    text = _BY_CLASS[insn.opcode & CLASS_MASK](insns, pc, insn)
    return not text.startswith("BUG_"), text


def _u32(value: int) -> int:
    return value & 0xFFFF_FFFF


def _size(insn: Instruction) -> Size:
    return Size(insn.opcode & SIZE_MASK)


def _alu(insns: Sequence[Instruction], pc: int, insn: Instruction) -> str:
    reg = "w" if insn.opcode & CLASS_MASK == InsnClass.ALU else "r"
    op = insn.opcode & OPERATION_MASK
    is_x = insn.opcode & SOURCE_MASK == Source.X
    if op == AluOp.END:
        if reg == "r":
            return f"r{insn.dst} = bswap{insn.imm} r{insn.dst}"
        return f"r{insn.dst} = {'be' if is_x else 'le'}{insn.imm} r{insn.dst}"
    if op == AluOp.NEG:
        return f"{reg}{insn.dst} = -{reg}{insn.dst}"
    if reg == "r" and op == AluOp.MOV and is_x and insn.off == ADDR_SPACE_CAST_OFF:
        return f"r{insn.dst} = addr_space_cast(r{insn.src}, {_u32(insn.imm) >> 16}, {insn.imm & 0xFFFF})"
    if reg == "r" and op == AluOp.MOV and is_x and insn.off == PERCPU_ADDR_OFF:
        return f"r{insn.dst} = &(void __percpu *)(r{insn.src})"
    if op in SIGNED_ALU_OPERATOR and insn.off == SIGNED_DIVISION_OFFSET:
        operator = SIGNED_ALU_OPERATOR[op]
    else:
        operator = ALU_OPERATOR.get(op, NULL)
    if is_x:
        cast = MOVSX_CAST.get(insn.off, "") if op == AluOp.MOV else ""
        return f"{reg}{insn.dst} {operator} {cast}{reg}{insn.src}"
    return f"{reg}{insn.dst} {operator} {insn.imm}"


def _stx(insns: Sequence[Instruction], pc: int, insn: Instruction) -> str:
    mode = insn.opcode & MODE_MASK
    size = LOAD_TYPE[_size(insn)]
    where = f"(r{insn.dst} {insn.off:+d})"
    if mode == Mode.MEM:
        return f"*({size} *){where} = r{insn.src}"
    if mode != Mode.ATOMIC:
        return f"BUG_{insn.opcode:02x}"
    width = "64" if _size(insn) == Size.DW else ""
    imm = insn.imm
    if imm in ATOMIC_ALU:
        return f"lock *({size} *){where} {ALU_OPERATOR[AluOp(imm & OPERATION_MASK)]} r{insn.src}"
    if imm in ATOMIC_FETCH_ALU:
        name = ATOMIC_NAME[AluOp(imm & OPERATION_MASK)]
        return f"r{insn.src} = atomic{width}_fetch_{name}(({size} *){where}, r{insn.src})"
    if imm == AtomicOp.CMPXCHG:
        return f"r0 = atomic{width}_cmpxchg(({size} *){where}, r0, r{insn.src})"
    if imm == AtomicOp.XCHG:
        return f"r{insn.src} = atomic{width}_xchg(({size} *){where}, r{insn.src})"
    if imm == LOAD_ACQUIRE:
        return f"r{insn.dst} = load_acquire(({size} *)(r{insn.src} {insn.off:+d}))"
    if imm == STORE_RELEASE:
        return f"store_release(({size} *){where}, r{insn.src})"
    return f"BUG_{insn.opcode:02x}"


def _st(insns: Sequence[Instruction], pc: int, insn: Instruction) -> str:
    mode = insn.opcode & MODE_MASK
    if mode == Mode.MEM:
        return f"*({LOAD_TYPE[_size(insn)]} *)(r{insn.dst} {insn.off:+d}) = {insn.imm}"
    if mode == NOSPEC_MODE:
        return "nospec"
    return f"BUG_st_{insn.opcode:02x}"


def _ldx(insns: Sequence[Instruction], pc: int, insn: Instruction) -> str:
    mode = insn.opcode & MODE_MASK
    if mode == Mode.MEM:
        size = LOAD_TYPE[_size(insn)]
    elif mode == Mode.MEMSX:
        size = SIGNED_LOAD_TYPE.get(_size(insn), NULL)
    else:
        return f"BUG_ldx_{insn.opcode:02x}"
    return f"r{insn.dst} = *({size} *)(r{insn.src} {insn.off:+d})"


def _ld(insns: Sequence[Instruction], pc: int, insn: Instruction) -> str:
    mode = insn.opcode & MODE_MASK
    size = _size(insn)
    if mode == Mode.ABS:
        return f"r0 = *({LOAD_TYPE[size]} *)skb[{insn.imm}]"
    if mode == Mode.IND:
        return f"r0 = *({LOAD_TYPE[size]} *)skb[r{insn.src} + {insn.imm}]"
    if mode == Mode.IMM and size == Size.DW:
        tail_imm = insns[pc + 1].imm if pc + 1 < len(insns) else 0
        return f"r{insn.dst} = {_lddw_value(insn, tail_imm)}"
    return f"BUG_ld_{insn.opcode:02x}"


def _lddw_value(insn: Instruction, tail_imm: int) -> str:
    # Pseudo sources follow bpftool's print_imm(), naming fds/indices instead of map ids.
    src = insn.src
    if src == LddwSource.MAP_FD:
        return f"map[fd:{_u32(insn.imm)}]"
    if src == LddwSource.MAP_VALUE:
        return f"map[fd:{_u32(insn.imm)}][0]+{_u32(tail_imm)}"
    if src == LddwSource.MAP_IDX:
        return f"map[idx:{_u32(insn.imm)}]"
    if src == LddwSource.MAP_IDX_VALUE:
        return f"map[idx:{_u32(insn.imm)}]+{_u32(tail_imm)}"
    if src == LddwSource.FUNC:
        return f"subprog[{insn.imm:+d}]"
    return f"0x{(_u32(tail_imm) << 32) | _u32(insn.imm):x}"


def _jmp(insns: Sequence[Instruction], pc: int, insn: Instruction) -> str:
    op = insn.opcode & OPERATION_MASK
    cls = insn.opcode & CLASS_MASK
    if insn.opcode == InsnClass.JMP | JmpOp.CALL | Source.X:
        return f"callx r{insn.dst}"  # LLVM's wording; the kernel has none (see module doc)
    if op == JmpOp.CALL:
        if insn.src == CallKind.LOCAL:
            return f"call pc{insn.imm:+d}"
        if insn.src == CallKind.HELPER and insn.imm in HELPER_NAMES:
            name = HELPER_NAMES[insn.imm]
        elif insn.src == CallKind.KFUNC:
            name = KFUNC_NAME
        else:
            name = UNKNOWN_HELPER
        return f"call {name}#{insn.imm}"
    if insn.opcode == InsnClass.JMP | JmpOp.JA:
        return f"goto pc{insn.off:+d}"
    if insn.opcode == GOTOX:
        return f"gotox r{insn.dst}"
    if insn.opcode == InsnClass.JMP | JCOND and insn.src == 0:
        return f"may_goto pc{insn.off:+d}"
    if insn.opcode == InsnClass.JMP32 | JmpOp.JA:
        return f"gotol pc{insn.imm:+d}"
    if insn.opcode == InsnClass.JMP | JmpOp.EXIT:
        return "exit"
    reg = "w" if cls == InsnClass.JMP32 else "r"
    operator = JUMP_OPERATOR.get(op, NULL)
    if insn.opcode & SOURCE_MASK == Source.X:
        return f"if {reg}{insn.dst} {operator} {reg}{insn.src} goto pc{insn.off:+d}"
    return f"if {reg}{insn.dst} {operator} 0x{_u32(insn.imm):x} goto pc{insn.off:+d}"


_BY_CLASS: dict[int, Callable[[Sequence[Instruction], int, Instruction], str]] = {
    InsnClass.LD: _ld, InsnClass.LDX: _ldx, InsnClass.ST: _st, InsnClass.STX: _stx,
    InsnClass.ALU: _alu, InsnClass.ALU64: _alu, InsnClass.JMP: _jmp, InsnClass.JMP32: _jmp,
}
