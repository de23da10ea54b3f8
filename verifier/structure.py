"""The structural checks the kernel makes before (and while) interpreting.

``check_structure(program)`` runs, in the kernel's order, the passes
``bpf_check`` (Linux 6.18) makes before abstract interpretation and returns
the first rejection in the kernel's own words, or None:

1. ``bpf_prog_load``: 1 to 1,000,000 instructions (4,096 unprivileged), else
   E2BIG with an empty log.
2. ``add_subprog_and_kfunc``: every local call and ``lddw func`` target
   starts a subprogram ("call to invalid destination" when it is outside the
   program, "too many subprograms" past 256).  Unprivileged loads may not
   use them at all (EPERM).
3. ``check_subprogs``: every jump stays in its subprogram ("jump out of
   range from insn %d to %d"), every subprogram ends with exit or ja ("last
   insn is not an exit or jmp").  All slots are scanned, lddw tails too.
4. ``check_btf_info`` without BTF (``check_abnormal_return``): no LD_ABS/IND
   and no tail call outside the main program.
5. ``resolve_pseudo_ldimm64``: one pass in slot order — LDX reserved fields,
   lddw pairs (second slot all zero but imm; known pseudo source), the maps
   lddw names (as far as ``program.maps`` describes them), and
   ``bpf_opcode_in_insntable`` ("unknown opcode %02x") for everything else.
6. ``check_cfg``: the DFS of ``verifier.cfg.depth_first`` — back edges are
   fine for a privileged load and rejected otherwise — then every slot must
   have been reached ("unreachable insn %d") and no jump may land on an lddw
   tail ("jump into the middle of ldimm64 insn %d").

What is *not* here, and why:

* The reserved-field checks of ALU, JMP, ST, STX, CALL, EXIT, LD_ABS and
  LD_IMM64 instructions ("BPF_ALU uses reserved fields", ...) are made by
  ``do_check`` when it reaches the instruction, not by a pre-pass: a
  malformed instruction in a branch the verifier proves dead is accepted,
  and an earlier error on the path wins.  ``instruction_error(program, pc)``
  gives the exploration layer that check for one instruction.  Only LDX is
  checked up front (by ``resolve_pseudo_ldimm64``).
* Register numbers ("R%d is invalid") are checked when an operand is read or
  written, interleaved with "R%d !read_ok": transfer-layer business.
* BTF: kfunc calls (``add_kfunc_call``), ``lddw`` with ``BPF_PSEUDO_BTF_ID``,
  func_info/line_info and exception callbacks need the kernel's BTF; the
  structural pass treats them as valid.  ``BPF_PSEUDO_MAP_IDX[_VALUE]`` need
  an fd_array, which ``Program`` does not model; they pass too.
* Map references whose index is not in ``program.maps`` are not judged (the
  kernel would name an fd, which a ``Program`` does not have).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ebpfvm.isa.alu import AluOp
from ebpfvm.isa.instruction import Instruction
from ebpfvm.isa.jump import CONDITIONAL_JUMPS, CallKind, JmpOp
from ebpfvm.isa.load_store import LDDW_OPCODE, AtomicOp, LddwSource, Mode, Size
from ebpfvm.isa.opcode import CLASS_MASK, MODE_MASK, OPERATION_MASK, SIZE_MASK, SOURCE_MASK, InsnClass, Source

from . import messages as M
from .cfg import DfsResult, Stop, depth_first, is_jump_class, is_pseudo_call, is_pseudo_func, jump_offset

# --- limits (include/linux/bpf.h, include/uapi/linux/bpf_common.h) ---------------
BPF_MAXINSNS = 4096  # unprivileged loads
BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000  # CAP_BPF loads
BPF_MAX_SUBPROGS = 256
MAX_USED_MAPS = 64
BPF_MAX_VAR_OFF = 1 << 29
BPF_FUNC_TAIL_CALL = 12

JCOND = 0xE0  # BPF_JCOND: may_goto, JMP class only
ATOMIC_LOAD_ACQ = 0x100
ATOMIC_STORE_REL = 0x110
ADDR_SPACE_CAST = 1  # off of ALU64 MOV X that makes it addr_space_cast
SKB_PROG_TYPES = frozenset({"socket_filter", "sched_cls", "sched_act"})  # may_access_skb


def _kernel_opcodes() -> frozenset[int]:
    """``bpf_opcode_in_insntable`` of Linux 6.18: ``BPF_INSN_MAP`` plus the cBPF
    carry-overs LD_ABS/LD_IND and may_goto.  Not the same as the ISA's FORMS:
    no callx (0x8d) and no gotox, but atomics of every size (load-acquire and
    store-release exist for bytes and halves)."""
    codes = set()
    two_operand = [op for op in AluOp if op not in (AluOp.NEG, AluOp.END)]
    for cls in (InsnClass.ALU, InsnClass.ALU64):
        for op in two_operand:
            codes |= {cls | op | Source.K, cls | op | Source.X}
        codes.add(cls | AluOp.NEG | Source.K)
    codes |= {InsnClass.ALU | AluOp.END | Source.K, InsnClass.ALU | AluOp.END | Source.X,
              InsnClass.ALU64 | AluOp.END | Source.K}
    for cls in (InsnClass.JMP, InsnClass.JMP32):
        for op in CONDITIONAL_JUMPS:
            codes |= {cls | op | Source.K, cls | op | Source.X}
        codes.add(cls | JmpOp.JA)
    codes |= {InsnClass.JMP | JmpOp.CALL, InsnClass.JMP | JmpOp.EXIT, InsnClass.JMP | JCOND}
    for size in Size:
        codes |= {InsnClass.STX | Mode.MEM | size, InsnClass.STX | Mode.ATOMIC | size,
                  InsnClass.ST | Mode.MEM | size, InsnClass.LDX | Mode.MEM | size}
        if size is not Size.DW:
            codes |= {InsnClass.LDX | Mode.MEMSX | size, InsnClass.LD | Mode.ABS | size,
                      InsnClass.LD | Mode.IND | size}
    codes.add(LDDW_OPCODE)
    return frozenset(int(c) for c in codes)


KERNEL_OPCODES: frozenset[int] = _kernel_opcodes()

ATOMIC_RMW_OPS = frozenset(int(op) for op in AtomicOp)
ATOMIC_OPS = ATOMIC_RMW_OPS | {ATOMIC_LOAD_ACQ, ATOMIC_STORE_REL}


@dataclass(frozen=True)
class StructureError:
    """A rejection: the kernel's log line (``message``; None when the kernel
    logs nothing), the errno name of the failed load, the instruction it is
    about (None for the whole program) and the kernel function that rejects
    (``check``).  ``reads_first`` (``instruction_error`` only) lists the
    registers ``do_check`` reads — and may reject as uninitialised or invalid
    — before it makes this check."""

    insn: int | None
    message: str | None
    errno: str = "EINVAL"
    check: str = ""
    reads_first: tuple[int, ...] = ()

    def __str__(self) -> str:
        where = "" if self.insn is None else f"insn {self.insn}: "
        return f"{where}{self.message if self.message is not None else '(no log)'} [{self.errno}]"


def _reject(message: M.Message, at: int | None, errno: str | None = None, **fields: object) -> StructureError:
    return StructureError(at, message(**fields) if message.template else None, errno or message.errno,
                          message.origin)


# --- the passes -----------------------------------------------------------------------


def check_structure(program, *, privileged: bool = True) -> StructureError | None:
    """The first structural rejection of ``program`` in the kernel's order and
    words, or None if the program gets past ``check_cfg``.  ``privileged``
    means CAP_BPF (root); without it back edges and calls are refused."""
    insns: Sequence[Instruction] = program.instructions
    limit = BPF_COMPLEXITY_LIMIT_INSNS if privileged else BPF_MAXINSNS
    if not 0 < len(insns) <= limit:
        return _reject(M.PROG_SIZE, None)
    starts, error = _add_subprograms(insns, privileged)
    if error:
        return error
    error = _check_subprograms(insns, starts)
    if error:
        return error
    error = _resolve_ldimm64(insns, tuple(getattr(program, "maps", ()) or ()))
    if error:
        return error
    return check_cfg(insns, privileged=privileged)


def _add_subprograms(insns: Sequence[Instruction], privileged: bool) -> tuple[list[int], StructureError | None]:
    """``add_subprog_and_kfunc``: subprogram starts, in slot order of discovery."""
    starts = {0}
    for pc, insn in enumerate(insns):
        kfunc = insn.opcode == InsnClass.JMP | JmpOp.CALL and insn.src == CallKind.KFUNC
        if not (is_pseudo_func(insn) or is_pseudo_call(insn) or kfunc):
            continue
        if not privileged:
            return [], _reject(M.CALLS_NEED_CAP_BPF, pc)
        if kfunc:
            continue  # add_kfunc_call needs the kernel's BTF: not judged here
        target = pc + insn.imm + 1
        if not 0 <= target < len(insns):
            return [], _reject(M.CALL_TO_INVALID_DESTINATION, pc)
        if target not in starts:
            if len(starts) >= BPF_MAX_SUBPROGS:
                return [], _reject(M.TOO_MANY_SUBPROGRAMS, pc)
            starts.add(target)
    return sorted(starts), None


def _check_subprograms(insns: Sequence[Instruction], starts: list[int]) -> StructureError | None:
    """``check_subprogs`` then ``check_abnormal_return`` (no BTF)."""
    bounds = starts + [len(insns)]
    current = 0
    start, end = bounds[0], bounds[1]
    ld_abs: dict[int, int] = {}
    tail_call: dict[int, int] = {}
    for pc, insn in enumerate(insns):
        code = insn.opcode
        if code == InsnClass.JMP | JmpOp.CALL and insn.src == 0 and insn.imm == BPF_FUNC_TAIL_CALL:
            tail_call.setdefault(current, pc)
        if code & CLASS_MASK == InsnClass.LD and code & MODE_MASK in (Mode.ABS, Mode.IND):
            ld_abs.setdefault(current, pc)
        if is_jump_class(code) and code & OPERATION_MASK not in (JmpOp.CALL, JmpOp.EXIT):
            target = pc + jump_offset(insn) + 1
            if not start <= target < end:
                return _reject(M.JUMP_OUT_OF_RANGE, pc, insn=pc, target=target)
        if pc == end - 1:
            if code not in (InsnClass.JMP | JmpOp.EXIT, InsnClass.JMP | JmpOp.JA, InsnClass.JMP32 | JmpOp.JA):
                return _reject(M.LAST_INSN_NOT_EXIT, pc)
            current += 1
            start = end
            if current < len(starts):
                end = bounds[current + 1]
    for sub in range(1, len(starts)):
        if sub in ld_abs:
            return _reject(M.LD_ABS_IN_SUBPROG, ld_abs[sub])
        if sub in tail_call:
            return _reject(M.TAIL_CALL_IN_SUBPROG, tail_call[sub])
    return None


def _resolve_ldimm64(insns: Sequence[Instruction], maps: tuple) -> StructureError | None:
    """``resolve_pseudo_ldimm64``: one pass over the slots; an lddw's second
    slot is skipped once the pair is known to be well formed."""
    used: list[int] = []
    pc = 0
    count = len(insns)
    while pc < count:
        insn = insns[pc]
        code = insn.opcode
        if code & CLASS_MASK == InsnClass.LDX and (code & MODE_MASK not in (Mode.MEM, Mode.MEMSX) or insn.imm):
            return _reject(M.LDX_RESERVED, pc)
        if code == LDDW_OPCODE:
            tail = insns[pc + 1] if pc + 1 < count else None
            if tail is None or (tail.opcode, tail.dst, tail.src, tail.off) != (0, 0, 0, 0):
                return _reject(M.INVALID_LD_IMM64, pc)
            error = _check_pseudo_source(pc, insn, tail, maps, used)
            if error:
                return error
            pc += 2
            continue
        if code not in KERNEL_OPCODES:
            return _reject(M.UNKNOWN_OPCODE, pc, code=code)
        pc += 1
    return None


def _check_pseudo_source(pc: int, insn: Instruction, tail: Instruction, maps: tuple,
                         used: list[int]) -> StructureError | None:
    src = insn.src
    if src in (LddwSource.IMM64, LddwSource.FUNC, LddwSource.BTF_ID):
        return None  # BTF ids need the kernel's BTF: not judged here
    if src not in (LddwSource.MAP_FD, LddwSource.MAP_VALUE, LddwSource.MAP_IDX, LddwSource.MAP_IDX_VALUE) or \
            (src in (LddwSource.MAP_FD, LddwSource.MAP_IDX) and tail.imm != 0):
        return _reject(M.UNRECOGNIZED_LD_IMM64, pc)
    if src in (LddwSource.MAP_IDX, LddwSource.MAP_IDX_VALUE) or not 0 <= insn.imm < len(maps):
        return None  # fd_array / an index the program's map list does not cover
    if insn.imm not in used:
        if len(used) >= MAX_USED_MAPS:
            return _reject(M.TOO_MANY_MAPS, pc, limit=MAX_USED_MAPS)
        used.append(insn.imm)
    if src != LddwSource.MAP_VALUE:
        return None
    definition = maps[insn.imm]
    off = tail.imm & 0xFFFF_FFFF
    if off >= BPF_MAX_VAR_OFF:
        return _reject(M.DIRECT_VALUE_OFFSET, pc, off=off)
    if definition.map_type == "array":  # array_map_direct_value_addr
        if definition.max_entries != 1:
            return _reject(M.BAD_DIRECT_VALUE, pc, M.ENOTSUPP, value_size=definition.value_size, off=off)
        if off >= definition.value_size:
            return _reject(M.BAD_DIRECT_VALUE, pc, value_size=definition.value_size, off=off)
        return None
    if definition.map_type == "arena":
        return None  # arena_map_direct_value_addr depends on the arena's mapping
    return _reject(M.NO_DIRECT_VALUE, pc)


def check_cfg(insns: Sequence[Instruction], *, privileged: bool = True,
              dfs: DfsResult | None = None) -> StructureError | None:
    """``check_cfg``: the DFS from insn 0, then reachability of every slot and
    no edge into an lddw's second slot (reported at the lddw)."""
    if dfs is None:
        dfs = depth_first(insns, stop_at_back_edge=not privileged, stop_at_out_of_range=True)
    if dfs.stop is not None:
        message = M.CFG_JUMP_OUT_OF_RANGE if dfs.stop_reason is Stop.OUT_OF_RANGE else M.BACK_EDGE
        return _reject(message, dfs.stop.source, insn=dfs.stop.source, target=dfs.stop.target)
    explored = dfs.explored
    pc = 0
    while pc < len(insns):
        if pc not in explored:
            return _reject(M.UNREACHABLE_INSN, pc, insn=pc)
        if insns[pc].opcode == LDDW_OPCODE:
            if pc + 1 < len(insns) and dfs.state[pc + 1] != 0:
                return _reject(M.JUMP_INTO_LDIMM64, pc, insn=pc)
            pc += 1
        pc += 1
    return None


# --- do_check, one instruction -----------------------------------------------------------


def instruction_error(program, pc: int) -> StructureError | None:
    """The field check ``do_check`` makes when it reaches ``program[pc]``, if
    it fails.  For a program that passed ``check_structure`` (so the opcode is
    one the kernel knows).  Conditional jumps read ``dst`` first
    (``reads_first``); every other check comes before any register access.

    ``program.prog_type`` decides whether LD_ABS/LD_IND are allowed (not
    judged when it is None); ``program.maps`` whether an ``addr_space_cast``
    has an arena (not judged without maps)."""
    insn = program.instructions[pc]
    code, cls = insn.opcode, insn.opcode & CLASS_MASK
    op, x = code & OPERATION_MASK, code & SOURCE_MASK == Source.X

    def fail(message: M.Message, reads: tuple[int, ...] = (), **fields: object) -> StructureError:
        return StructureError(pc, message(**fields), message.errno, message.origin, reads)

    if cls in (InsnClass.ALU, InsnClass.ALU64):
        return _alu_error(program, insn, fail)
    if cls == InsnClass.STX:
        if code & MODE_MASK == Mode.ATOMIC:
            if insn.imm not in ATOMIC_OPS:
                return fail(M.ATOMIC_BAD_OP, imm=insn.imm & 0xFFFF_FFFF)
            if insn.imm in ATOMIC_RMW_OPS and code & SIZE_MASK not in (Size.W, Size.DW):
                return fail(M.ATOMIC_BAD_SIZE)
            return None
        return fail(M.STX_RESERVED) if code & MODE_MASK != Mode.MEM or insn.imm else None
    if cls == InsnClass.ST:
        return fail(M.ST_RESERVED) if code & MODE_MASK != Mode.MEM or insn.src else None
    if cls in (InsnClass.JMP, InsnClass.JMP32):
        if op == JmpOp.CALL:
            bad = (x or (insn.src != CallKind.KFUNC and insn.off) or insn.src not in set(CallKind)
                   or insn.dst or cls == InsnClass.JMP32)
            return fail(M.CALL_RESERVED) if bad else None
        if op == JmpOp.JA:
            bad = (x or insn.src or insn.dst or (cls == InsnClass.JMP and insn.imm)
                   or (cls == InsnClass.JMP32 and insn.off))
            return fail(M.JA_RESERVED) if bad else None
        if op == JmpOp.EXIT:
            return fail(M.EXIT_RESERVED) if x or insn.imm or insn.src or insn.dst or cls == InsnClass.JMP32 \
                else None
        if op == JCOND:
            bad = code != InsnClass.JMP | JCOND or insn.src or insn.dst or insn.imm
            return fail(M.MAY_GOTO_RESERVED, imm=insn.imm) if bad else None
        bad = insn.imm if x else insn.src
        return fail(M.JMP_RESERVED, (insn.dst,)) if bad else None
    if cls == InsnClass.LD:
        mode = code & MODE_MASK
        if mode in (Mode.ABS, Mode.IND):
            prog_type = getattr(program, "prog_type", None)
            if prog_type is not None and prog_type not in SKB_PROG_TYPES:
                return fail(M.LD_ABS_NOT_ALLOWED)
            bad = insn.dst or insn.off or code & SIZE_MASK == Size.DW or (mode == Mode.ABS and insn.src)
            return fail(M.LD_ABS_RESERVED) if bad else None
        if code == LDDW_OPCODE:
            return fail(M.LD_IMM64_RESERVED) if insn.off else None
    return None  # LDX: checked by resolve_pseudo_ldimm64


def _alu_error(program, insn: Instruction, fail) -> StructureError | None:
    code, op = insn.opcode, insn.opcode & OPERATION_MASK
    x = code & SOURCE_MASK == Source.X
    alu64 = code & CLASS_MASK == InsnClass.ALU64
    if op == AluOp.NEG:
        return fail(M.NEG_RESERVED) if x or insn.src or insn.off or insn.imm else None
    if op == AluOp.END:
        bad = insn.src or insn.off or insn.imm not in (16, 32, 64) or (alu64 and x)
        return fail(M.END_RESERVED) if bad else None
    if op == AluOp.MOV:
        if not x:
            return fail(M.MOV_RESERVED) if insn.src or insn.off else None
        if not alu64:
            return fail(M.MOV_RESERVED) if insn.off not in (0, 8, 16) or insn.imm else None
        if insn.off == ADDR_SPACE_CAST:
            if insn.imm not in (1, 1 << 16):
                return fail(M.ADDR_SPACE_CAST_BAD_IMM)
            arena = _has_arena(program)
            return fail(M.ADDR_SPACE_CAST_NO_ARENA) if arena is False else None
        return fail(M.MOV_RESERVED) if insn.off not in (0, 8, 16, 32) or insn.imm else None
    bad_off = insn.off not in (0, 1) or (insn.off == 1 and op not in (AluOp.MOD, AluOp.DIV))
    if x:
        return fail(M.ALU_RESERVED) if insn.imm or bad_off else None
    return fail(M.ALU_RESERVED) if insn.src or bad_off else None


def _has_arena(program) -> bool | None:
    """Whether the program uses an arena map (``prog->aux->arena``); None when
    its map references cannot be resolved."""
    maps = tuple(getattr(program, "maps", ()) or ())
    refs = [insn.imm for insn in program.instructions
            if insn.opcode == LDDW_OPCODE and insn.src in (LddwSource.MAP_FD, LddwSource.MAP_VALUE)]
    if any(not 0 <= i < len(maps) for i in refs):
        return None
    return any(maps[i].map_type == "arena" for i in refs)
