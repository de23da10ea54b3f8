"""Transfer functions: what one instruction does to an abstract state.

``step(env, state, pc)`` dispatches on the instruction class through
``_CLASS`` and returns the successors ``[(next_pc, state), ...]``: one for
straight-line code, up to two for a conditional jump (a branch the domains
prove dead is left out), none for the main program's ``exit``.  Safety
checks live in :mod:`.checks`; a failed one raises ``Reject``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace

from ebpfvm.helpers import default_registry
from ebpfvm.helpers.prototype import RetKind
from ebpfvm.isa.instruction import Instruction

from . import messages as M
from .callbacks import CALLBACK_HELPERS, return_to_call_site, schedule_callback
from .checks import (
    KNOWN_KEY_MAP_TYPES,
    Env,
    Reject,
    check_callback_return,
    check_helper_args,
    check_mem_access,
    check_return,
    check_write_reg,
    inner_map_index,
    live_registers,
    read_reg,
)
from .domains import S64_MIN, Cmp, ScalarBounds, branch_taken, refine, swap
from .precision import demand_precision, derived
from .state import (
    BPF_REG_FP,
    MAX_CALL_FRAMES,
    NOT_INIT,
    OR_NULL_BASE,
    PACKET_TYPES,
    Frame,
    Reg,
    RegType,
    State,
    const,
    fits_width,
    pointer,
    scalar,
    with_scalar_id,
)
from .structure import instruction_error

ALU, ALU64, JMP, JMP32, LD, LDX, ST, STX = 0x04, 0x07, 0x05, 0x06, 0x00, 0x01, 0x02, 0x03
SIZE_BYTES = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}
BPF_MAX_VAR_OFF = 1 << 29
_REGISTRY = None


def _helpers():
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = default_registry()
    return _REGISTRY


def _fail_structural(program, pc: int) -> None:
    error = instruction_error(program, pc)
    if error is not None:
        exc = Reject(M.Message("{t}", error.errno), t=error.message)
        exc.reads_first = error.reads_first  # type: ignore[attr-defined]
        raise exc


# --- ALU ------------------------------------------------------------------------------

# opcode >> 4 -> (64-bit method, 32-bit method, kernel operator text)
_ALU_OPS = {
    0x0: ("add", "add32", "+="), 0x1: ("sub", "sub32", "-="), 0x2: ("mul", "mul32", "*="),
    0x3: ("div", "div32", "/="), 0x4: ("or_", "or32", "|="), 0x5: ("and_", "and32", "&="),
    0x6: ("lsh", "lsh32", "<<="), 0x7: ("rsh", "rsh32", ">>="), 0x9: ("mod", "mod32", "%="),
    0xA: ("xor", "xor32", "^="), 0xC: ("arsh", "arsh32", "s>>="),
}
_SIGNED = {0x3: ("sdiv", "sdiv32"), 0x9: ("smod", "smod32")}


def _alu(env: Env, state: State, insn: Instruction, pc: int) -> list:
    code = insn.opcode
    is64 = code & 0x07 == ALU64
    op = code >> 4
    x = bool(code & 0x08)
    regs = state.regs
    if op == 0xB:  # mov
        src = read_reg(state, insn.src) if x else None
        check_write_reg(insn.dst)
        if not x:
            value = ScalarBounds.const(insn.imm if is64 else insn.imm & 0xFFFF_FFFF)
            regs[insn.dst] = scalar(value)
        elif insn.off in (8, 16, 32) and insn.off != 0 and not (is64 and insn.off == 1):
            size = insn.off // 8
            var = (src.var.movsx(size) if is64 else src.var.movsx32(size)) if src.is_scalar \
                else (ScalarBounds.unknown().movsx(size) if is64 else ScalarBounds.unknown().mov32())
            link = 0
            if src.is_scalar and src.var.umax < 1 << (insn.off - 1):  # no sign extension: still linked
                regs[insn.src] = src = with_scalar_id(state, src)
                link = src.id
            regs[insn.dst] = replace(scalar(var), id=link)
        elif is64:
            if src.is_scalar:
                regs[insn.src] = src = with_scalar_id(state, src)  # linked scalars share what a branch teaches
            regs[insn.dst] = src
        elif src.is_scalar and fits_width(src, 4):  # w1 = w2 of a 32-bit value: still linked
            regs[insn.src] = src = with_scalar_id(state, src)
            regs[insn.dst] = replace(src, var=src.var.mov32())
        else:
            regs[insn.dst] = scalar(src.var.mov32() if src.is_scalar else ScalarBounds.unknown().mov32())
        return [(pc + 1, state)]
    if op in (0x8, 0xD):  # neg, end
        dst = read_reg(state, insn.dst)
        check_write_reg(insn.dst)
        var = dst.var if dst.is_scalar else ScalarBounds.unknown()
        if op == 0x8:
            var = var.neg() if is64 else var.neg32()
        elif is64:
            var = var.bswap(insn.imm)
        else:
            var = var.to_be(insn.imm) if x else var.truncate(insn.imm // 8)
        regs[insn.dst] = scalar(var)
        return [(pc + 1, state)]
    src = read_reg(state, insn.src) if x else const(insn.imm if is64 else insn.imm & 0xFFFF_FFFF)
    dst = read_reg(state, insn.dst)
    if op in (0x3, 0x9) and not x and insn.imm == 0:
        raise Reject(M.DIV_BY_ZERO)
    if op in (0x6, 0x7, 0xC) and not x and not 0 <= insn.imm < (64 if is64 else 32):
        raise Reject(M.INVALID_SHIFT, imm=insn.imm)
    check_write_reg(insn.dst)
    if dst.is_pointer or src.is_pointer:
        demand_precision(env, src if dst.is_pointer else dst)  # the offset must be exact
        regs[insn.dst] = _pointer_alu(env, state, insn, dst, src, op, is64)
        return [(pc + 1, state)]
    names = _SIGNED[op] if op in _SIGNED and insn.off == 1 else _ALU_OPS[op][:2]
    method = names[0] if is64 else names[1]
    result = derived(getattr(dst.var, method)(src.var), dst, src)
    if op in (0x0, 0x1) and is64 and dst.id and env.privileged and src.is_const():
        result = _link_add_const(dst, result, src.var.value, op == 0x1)
    regs[insn.dst] = result
    return [(pc + 1, state)]


def _link_add_const(dst: Reg, result: Reg, value: int, sub: bool) -> Reg:
    """``r1 += c`` / ``r1 -= c`` on a linked scalar keeps the link with an
    offset (the kernel's BPF_ADD_CONST), so a branch on either side still
    teaches the other; one such step per link, ``c`` a signed 32-bit value.
    (The kernel links ``w1 += c`` too; not modelled: the link is dropped.)"""
    value = value - (1 << 64) if value >> 63 else value
    if dst.delta is not None or not -(1 << 31) <= value < 1 << 31 or (sub and value == -(1 << 31)):
        return result
    return replace(result, id=dst.id, delta=-value if sub else value)


_NO_ARITH = (RegType.CONST_PTR_TO_MAP, RegType.PTR_TO_PACKET_END, RegType.PTR_TO_SOCK_COMMON, RegType.PTR_TO_FUNC)


def _pointer_alu(env: Env, state: State, insn: Instruction, dst: Reg, src: Reg, op: int, is64: bool) -> Reg:
    """``adjust_ptr_min_max_vals``: pointer +/- scalar keeps the pointer and
    moves its offset; pointer - pointer of one kind is a scalar; everything
    else is refused in the kernel's words."""
    opname = _ALU_OPS[op][2]
    if dst.is_pointer and src.is_pointer:
        if op == 0x1:
            return scalar()
        raise Reject(M.PTR_PTR, reg=insn.dst, op=opname)
    ptr, off_reg = (dst, src) if dst.is_pointer else (src, dst)
    if not is64:
        raise Reject(M.PTR_ARITH_32, reg=insn.dst)
    if ptr.maybe_null:
        raise Reject(M.PTR_ARITH_NULL, reg=insn.dst, type=ptr.type)
    if ptr.type in _NO_ARITH:
        if not (ptr.type is RegType.CONST_PTR_TO_MAP and off_reg.is_const(0) and op == 0x0):
            raise Reject(M.PTR_ARITH_TYPE, reg=insn.dst, type=ptr.type)
    var = off_reg.var
    if var.is_const():
        v = var.smin
        if v <= -BPF_MAX_VAR_OFF or v >= BPF_MAX_VAR_OFF:
            raise Reject(M.PTR_MATH_CONST, type=ptr.type, value=v)
    else:
        _check_sane_variable(var, ptr.type)
    if op == 0x1 and not dst.is_pointer:
        raise Reject(M.PTR_SUB_FROM_SCALAR, reg=insn.dst)
    if op == 0x1 and ptr.type is RegType.PTR_TO_STACK:
        raise Reject(M.PTR_SUB_FROM_STACK, reg=insn.dst)
    if op in (0x4, 0x5, 0xA):
        raise Reject(M.PTR_BITWISE, reg=insn.dst, op=opname)
    if op not in (0x0, 0x1):
        raise Reject(M.PTR_ARITH_OP, reg=insn.dst, op=opname)
    if var.is_const():
        delta = var.smin if op == 0x0 else -var.smin
        new_off = ptr.off + delta
        if not -BPF_MAX_VAR_OFF < new_off < BPF_MAX_VAR_OFF:
            raise Reject(M.PTR_OUT_OF_BOUNDS, value=new_off, type=ptr.type)
        return replace(ptr, off=new_off)
    new_var = ptr.var.add(var) if op == 0x0 else ptr.var.sub(var)
    if not new_var.is_const():
        _check_sane_variable(new_var, ptr.type)
    out = replace(ptr, var=new_var)
    if ptr.type in PACKET_TYPES:
        out = replace(out, id=state.fresh_id(), range=0)  # a new variable offset: no range known yet
    return out


# --- loads and stores -----------------------------------------------------------------


def _ldx(env: Env, state: State, insn: Instruction, pc: int) -> list:
    read_reg(state, insn.src)
    check_write_reg(insn.dst)
    size = SIZE_BYTES[insn.opcode & 0x18]
    loaded = check_mem_access(env, state, insn.src, insn.off, size, write=False)
    if insn.opcode & 0xE0 == 0x80 and loaded.is_scalar:  # memsx
        loaded = scalar(loaded.var.movsx(size) if not loaded.var.is_const() else
                        ScalarBounds.const(loaded.var.value).movsx(size))
    state.regs[insn.dst] = loaded
    return [(pc + 1, state)]


def _stx(env: Env, state: State, insn: Instruction, pc: int) -> list:
    if insn.opcode & 0xE0 == 0xC0:
        return _atomic(env, state, insn, pc)
    value = read_reg(state, insn.src)
    dst = read_reg(state, insn.dst)
    size = SIZE_BYTES[insn.opcode & 0x18]
    value = _link_spill(env, state, insn, dst, value, size)
    check_mem_access(env, state, insn.dst, insn.off, size, write=True, value=value)
    return [(pc + 1, state)]


def _link_spill(env: Env, state: State, insn: Instruction, dst: Reg, value: Reg, size: int) -> Reg:
    """``check_stack_write_fixed_off``: as root, a scalar spilled to an
    8-byte aligned stack slot is linked to its register by an id (given now
    if it has none) when its value fits the store, so a branch on either
    refines both; a narrowing spill breaks the link."""
    if not (env.privileged and value.is_scalar and dst.type is RegType.PTR_TO_STACK and dst.var.is_const()):
        return value
    if (dst.off + dst.var.smin + insn.off) % 8:
        return value
    if not fits_width(value, size):
        return replace(value, id=0) if value.id else value
    value = with_scalar_id(state, value)
    state.regs[insn.src] = value
    return value


def _st(env: Env, state: State, insn: Instruction, pc: int) -> list:
    read_reg(state, insn.dst)  # 6.18 allows BPF_ST into the context (no "BPF_ST stores into" check)
    size = SIZE_BYTES[insn.opcode & 0x18]
    check_mem_access(env, state, insn.dst, insn.off, size, write=True, imm=insn.imm)
    return [(pc + 1, state)]


def _atomic(env: Env, state: State, insn: Instruction, pc: int) -> list:
    size = SIZE_BYTES[insn.opcode & 0x18]
    imm = insn.imm & 0xFFFF_FFFF
    if imm == 0x100:  # load-acquire: a plain load
        return _ldx(env, state, Instruction(0x61 | (insn.opcode & 0x18), insn.dst, insn.src, insn.off), pc)
    if imm == 0x110:  # store-release: a plain store
        return _stx(env, state, Instruction(0x63 | (insn.opcode & 0x18), insn.dst, insn.src, insn.off), pc)
    value = read_reg(state, insn.src)
    dst = read_reg(state, insn.dst)
    if imm == 0xF1:
        read_reg(state, 0)
    if dst.type in (RegType.PTR_TO_CTX, RegType.PTR_TO_PACKET, RegType.PTR_TO_PACKET_META):
        raise Reject(M.ATOMIC_STORE_INTO, reg=insn.dst, type=dst.type)
    loaded = check_mem_access(env, state, insn.dst, insn.off, size, write=False)
    check_mem_access(env, state, insn.dst, insn.off, size, write=True, value=scalar())
    if imm == 0xF1:
        state.regs[0] = loaded if loaded is not None and loaded.is_scalar else scalar()
    elif imm & 0x01:  # fetch
        state.regs[insn.src] = loaded if loaded is not None and loaded.is_scalar else scalar()
    del value
    return [(pc + 1, state)]


def _ld(env: Env, state: State, insn: Instruction, pc: int) -> list:
    if insn.opcode == 0x18:
        return _lddw(env, state, insn, pc)
    # LD_ABS / LD_IND: r6 must hold the skb; r1-r5 are clobbered, r0 a scalar
    if insn.opcode & 0xE0 == 0x40:
        read_reg(state, insn.src)
    ctx = read_reg(state, 6)
    if ctx.type is not RegType.PTR_TO_CTX:
        raise Reject(M.LD_ABS_NOT_SKB)
    for r in range(1, 6):
        state.regs[r] = NOT_INIT
    size = SIZE_BYTES[insn.opcode & 0x18]
    state.regs[0] = scalar(ScalarBounds.unknown().truncate(size))
    return [(pc + 1, state)]


def _lddw(env: Env, state: State, insn: Instruction, pc: int) -> list:
    check_write_reg(insn.dst)
    tail = env.program.instructions[pc + 1]
    src = insn.src
    if src == 0:
        state.regs[insn.dst] = const((insn.imm & 0xFFFF_FFFF) | (tail.imm & 0xFFFF_FFFF) << 32)
    elif src == 1:
        state.regs[insn.dst] = replace(pointer(RegType.CONST_PTR_TO_MAP), map=insn.imm)
    elif src == 2:
        state.regs[insn.dst] = replace(pointer(RegType.PTR_TO_MAP_VALUE), map=insn.imm, off=tail.imm)
    elif src == 4:
        state.regs[insn.dst] = replace(pointer(RegType.PTR_TO_FUNC), func=pc + 1 + insn.imm)
    else:
        state.regs[insn.dst] = scalar()
    return [(pc + 2, state)]


# --- jumps ----------------------------------------------------------------------------

_CMP = {0x1: Cmp.EQ, 0x2: Cmp.GT, 0x3: Cmp.GE, 0x4: Cmp.SET, 0x5: Cmp.NE, 0x6: Cmp.SGT, 0x7: Cmp.SGE,
        0xA: Cmp.LT, 0xB: Cmp.LE, 0xC: Cmp.SLT, 0xD: Cmp.SLE}


def _jmp(env: Env, state: State, insn: Instruction, pc: int) -> list:
    op = insn.opcode >> 4
    if op == 0x0:  # ja / gotol
        off = insn.imm if insn.opcode & 0x07 == JMP32 else insn.off
        return [(pc + 1 + off, state)]
    if op == 0x8:
        return _call(env, state, insn, pc)
    if op == 0x9:
        return _exit(env, state, insn, pc)
    if op == 0xE:  # may_goto: both ways
        return [(pc + 1, state.copy()), (pc + 1 + insn.off, state)]
    return _cond(env, state, insn, pc)


def _cond(env: Env, state: State, insn: Instruction, pc: int) -> list:
    is32 = insn.opcode & 0x07 == JMP32
    x = bool(insn.opcode & 0x08)
    dst = read_reg(state, insn.dst)
    src = read_reg(state, insn.src) if x else const(insn.imm if not is32 else insn.imm & 0xFFFF_FFFF)
    cmp = _CMP[insn.opcode >> 4]
    target = pc + 1 + insn.off
    if dst.is_scalar and src.is_scalar:
        taken = branch_taken(cmp, dst.var, src.var, is32)
        if taken is not None:
            demand_precision(env, dst, src)  # the outcome relies on their values
        if taken is True:
            return [(target, state)]
        if taken is False:
            return [(pc + 1, state)]
        other = state.copy()
        live = _live_before(env, pc)
        _refine_scalars(state, insn, x, dst, src, cmp, is32, True, live)
        _refine_scalars(other, insn, x, dst, src, cmp, is32, False, live)
        return [(pc + 1, other), (target, state)]
    # pointers: null checks, packet ranges; otherwise both ways, nothing learnt
    null_cmp = not is32 and cmp in (Cmp.EQ, Cmp.NE) and (src.is_const(0) or dst.is_const(0))
    ptr, ptr_regno = (dst, insn.dst) if dst.is_pointer else (src, insn.src)
    if null_cmp and ptr.is_pointer:
        if not ptr.maybe_null:
            if ptr.type in _NOT_NULL:  # reg_not_null: these are never NULL
                return [(target if cmp is Cmp.NE else pc + 1, state)]
            other = state.copy()  # ctx, stack, packet...: both ways, nothing learnt
            return [(pc + 1, other), (target, state)]
        other = state.copy()
        taken_state, fall_state = state, other
        is_null_when_taken = cmp is Cmp.EQ
        _mark_null(taken_state, ptr, is_null_when_taken, env)
        _mark_null(fall_state, ptr, not is_null_when_taken, env)
        return [(pc + 1, fall_state), (target, taken_state)]
    if not is32 and x:
        known = _pkt_end_branch_taken(dst, src, cmp)
        if known is not None:
            return [(target, state)] if known else [(pc + 1, state)]
    other = state.copy()
    if not is32 and x:
        _packet_compare(other, state, insn, dst, src, cmp)
    return [(pc + 1, other), (target, state)]


# reg_not_null: pointer kinds a comparison with 0 knows the outcome of.
_NOT_NULL = frozenset({RegType.PTR_TO_MAP_VALUE, RegType.PTR_TO_MAP_KEY, RegType.PTR_TO_SOCK_COMMON,
                       RegType.PTR_TO_MEM, RegType.PTR_TO_RINGBUF_MEM, RegType.CONST_PTR_TO_MAP})


def _live_before(env: Env, pc: int) -> int:
    """The registers live before instruction ``pc`` (a bit per register)."""
    return live_registers(env)[pc]


def _refine_scalars(state: State, insn: Instruction, x: bool, dst: Reg, src: Reg, cmp: Cmp, is32: bool,
                    taken: bool, live: int = -1) -> None:
    a, b = refine(cmp, dst.var, src.var, is32, taken)
    a, b = a.sanitized(), b.sanitized()
    _set_linked(state, insn.dst, dst, a, live)
    if x:
        _set_linked(state, insn.src, src, b, live)


def _set_linked(state: State, regno: int, reg: Reg, var: ScalarBounds, live: int = -1) -> None:
    """The register and every scalar sharing its id learn the new bounds
    (``sync_linked_regs``), shifted by the difference of their offsets.  As
    in 6.18, registers of this frame dead at the branch (``live``) are left
    as they were: nothing reads them."""
    if reg.id:
        dead = [(i, r) for i, r in enumerate(state.regs) if not live >> i & 1]
        known = reg.delta or 0

        def sync(r: Reg) -> Reg:
            if not r.is_scalar or r.id != reg.id:
                return r
            if (r.delta or 0) == known:
                return replace(r, var=var)
            return replace(r, var=var.add(ScalarBounds.const((r.delta or 0) - known)))

        state.map_regs(sync)
        for i, r in dead:
            state.regs[i] = r
    state.regs[regno] = replace(reg, var=var)


def _mark_null(state: State, ptr: Reg, is_null: bool, env: Env | None = None) -> None:
    """Every register with the pointer's id becomes NULL (a zero scalar) or
    the checked pointer.  The value of a map-in-map lookup becomes, non-NULL,
    a map pointer to the inner map (``mark_ptr_or_null_reg``: inner_map_meta)."""
    if not ptr.id:
        return
    base = OR_NULL_BASE[ptr.type]
    inner = inner_map_index(env, ptr.map) if env is not None and base is RegType.PTR_TO_MAP_VALUE else None
    if inner is not None and not is_null:
        def fix_inner(r: Reg) -> Reg:
            if r.id != ptr.id or not r.maybe_null:
                return r
            return replace(pointer(RegType.CONST_PTR_TO_MAP), map=inner)

        state.map_regs(fix_inner)
        return

    def fix(r: Reg) -> Reg:
        if r.id != ptr.id or not r.maybe_null:
            return r
        if is_null:
            return const(0)
        # not NULL: the id has done its job (spin-lock map values, which keep
        # it in the kernel, are not modelled)
        return replace(r, type=base, id=0)

    state.map_regs(fix)
    if is_null and ptr.ref_obj_id:
        state.refs = tuple(x for x in state.refs if x != ptr.ref_obj_id)


# Packet-pointer ranges below zero: the pointer is known to be at (``>=``) or
# beyond (``>``) pkt_end (the kernel's AT_PKT_END / BEYOND_PKT_END).
AT_PKT_END, BEYOND_PKT_END = -1, -2


def _pkt_end_branch_taken(dst: Reg, src: Reg, cmp: Cmp) -> bool | None:
    """``is_pkt_ptr_branch_taken``: a packet pointer already known to be at
    or beyond pkt_end decides a later comparison with pkt_end."""
    if src.type is RegType.PTR_TO_PACKET_END and dst.type in PACKET_TYPES:
        pkt = dst
    elif dst.type is RegType.PTR_TO_PACKET_END and src.type in PACKET_TYPES:
        pkt, cmp = src, swap(cmp)
    else:
        return None
    if pkt.range >= 0:
        return None
    if cmp in (Cmp.GT, Cmp.LE) and pkt.range == BEYOND_PKT_END:
        return cmp is Cmp.GT
    if cmp in (Cmp.GE, Cmp.LT):
        return cmp is Cmp.GE
    return None


def _packet_compare(fall: State, taken: State, insn: Instruction, dst: Reg, src: Reg, cmp: Cmp) -> None:
    """``try_match_pkt_pointers``: a packet pointer compared with data_end (or
    pkt_meta with pkt) gives every pointer with its id a range in the branch
    where it is known to be below the end; in the other branch the compared
    register itself is at or beyond the end (``mark_pkt_end``).  ``taken``
    and ``fall`` are the states of the two outcomes (the jump's and the
    fall-through's)."""
    def pair(lo: Reg, hi: Reg) -> bool:
        return (lo.type is RegType.PTR_TO_PACKET and hi.type is RegType.PTR_TO_PACKET_END) or \
               (lo.type is RegType.PTR_TO_PACKET_META and hi.type is RegType.PTR_TO_PACKET)

    # (which state learns, the pointer, right-open)
    if pair(dst, src):
        plan = {Cmp.GT: (fall, dst, False), Cmp.LT: (taken, dst, True), Cmp.GE: (fall, dst, True),
                Cmp.LE: (taken, dst, False)}.get(cmp)
    elif pair(src, dst):
        plan = {Cmp.GT: (taken, src, True), Cmp.LT: (fall, src, False), Cmp.GE: (taken, src, False),
                Cmp.LE: (fall, src, True)}.get(cmp)
    else:
        return
    if plan is None:
        return
    state, ptr, right_open = plan
    if ptr.type is RegType.PTR_TO_PACKET:
        beyond = fall if state is taken else taken
        regno = insn.dst if ptr is dst else insn.src
        beyond.regs[regno] = replace(ptr, range=AT_PKT_END if right_open else BEYOND_PKT_END)
    if ptr.off < 0 or (ptr.off == 0 and right_open) or ptr.var.umax + ptr.off > 0xFFFF:
        return
    new_range = ptr.off + (1 if right_open else 0)  # pkt < end: one byte more (6.18)
    state.map_regs(lambda r: replace(r, range=max(r.range, new_range))
                   if r.type is ptr.type and r.id == ptr.id else r)


# --- calls and exit --------------------------------------------------------------------

# Helpers after which packet pointers are stale (bpf_helper_changes_pkt_data).
_CHANGES_PKT = frozenset({9, 10, 11, 26, 28, 31, 37, 38, 39, 43, 44, 45, 50, 53, 54, 57, 65, 73, 74, 75, 76,
                          77, 78, 79, 80, 82, 130, 131, 132, 133, 190, 191, 192})
MAX_HELPER_ID = 212


def _call(env: Env, state: State, insn: Instruction, pc: int) -> list:
    if insn.src == 1:
        return _local_call(env, state, insn, pc)
    if insn.src == 2:
        raise Reject(M.Message("kernel functions are not modelled", "EINVAL"))
    from ebpfvm.helpers.ids import HELPER_NAMES
    fid = insn.imm
    if not 0 <= fid < MAX_HELPER_ID:
        raise Reject(M.INVALID_FUNC, name="unknown", id=fid)
    name = HELPER_NAMES.get(fid, "unknown")
    if name != "unknown" and not name.startswith("bpf_"):
        name = "bpf_" + name
    allowed = env.ptype.allows_helper(fid) if env.ptype is not None else True
    helper = _helpers().get(fid)
    if not allowed or helper is None:
        raise Reject(M.HELPER_NOT_ALLOWED, name=name, id=fid)
    proto = helper.proto
    meta = check_helper_args(env, state, proto, name, fid)
    definition = env.maps[meta.map] if 0 <= meta.map < len(env.maps) else None
    if fid == 12 and definition is not None and definition.map_type != "prog_array":
        raise Reject(M.TAIL_CALL_MAP)
    if definition is not None:
        _check_map_compat(definition, fid, name)
    if meta.release_ref:
        rid = meta.release_ref
        state.refs = tuple(x for x in state.refs if x != rid)
        state.map_regs(lambda r: scalar() if r.ref_obj_id == rid else r)
    callback = schedule_callback(env, state, fid, pc) if fid in CALLBACK_HELPERS else None
    for r in range(1, 6):
        state.regs[r] = NOT_INIT
    ret = proto.ret
    if ret is RetKind.PTR_TO_MAP_VALUE_OR_NULL and _lookup_cannot_fail(fid, definition, meta):
        state.regs[0] = replace(pointer(RegType.PTR_TO_MAP_VALUE), map=meta.map)
    elif ret is RetKind.PTR_TO_MAP_VALUE_OR_NULL:
        state.regs[0] = replace(pointer(RegType.PTR_TO_MAP_VALUE_OR_NULL), id=state.fresh_id(), map=meta.map)
    elif ret is RetKind.PTR_TO_ALLOC_MEM_OR_NULL:
        state.fresh_id()  # the kernel numbers the maybe-NULL result, then the reference replaces it
        rid = state.fresh_id()
        state.refs = state.refs + (rid,)
        env.ref_sites[rid] = pc
        state.regs[0] = replace(pointer(RegType.PTR_TO_RINGBUF_MEM_OR_NULL), id=rid, ref_obj_id=rid,
                                mem_size=meta.alloc_size)
    elif ret is RetKind.PTR_TO_MEM_OR_NULL:
        state.regs[0] = replace(pointer(RegType.PTR_TO_MEM_OR_NULL), id=state.fresh_id(), mem_size=meta.alloc_size)
    elif ret is RetKind.VOID:
        state.regs[0] = NOT_INIT  # reading r0 after a void helper is "R0 !read_ok"
    else:
        state.regs[0] = scalar(_result_bounds(fid, meta))
    if fid in _CHANGES_PKT:
        state.map_regs(lambda r: scalar() if r.type in PACKET_TYPES or r.type is RegType.PTR_TO_PACKET_END else r)
    if fid == 12:  # a tail call that fails falls through
        pass
    if callback is not None:
        # As the kernel does: the caller goes on (as if the callback ran no
        # times) and the callback's entry waits; its exit comes back here.
        return [(pc + 1, state), callback]
    return [(pc + 1, state)]


# do_refine_retval_range: string reads and stack dumps return at most their
# size argument, or a negative errno; the CPU number is below nr_cpu_ids.
_SIZE_BOUNDED_RESULT = frozenset({45, 67, 114, 115, 141})  # probe_read{,_user,_kernel}_str, get_{task_}stack
_GET_SMP_PROCESSOR_ID = 8
MAX_ERRNO = 4095


@functools.cache
def possible_cpus() -> int:
    """``nr_cpu_ids`` of this machine (/sys/devices/system/cpu/possible)."""
    try:
        text = open("/sys/devices/system/cpu/possible").read().strip()
        return int(text.split(",")[-1].split("-")[-1]) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def _result_bounds(fid: int, meta) -> ScalarBounds | None:
    if fid in _SIZE_BOUNDED_RESULT:
        return ScalarBounds.from_ranges(smin=-MAX_ERRNO, smax=meta.msize_max,
                                        s32_min=-MAX_ERRNO, s32_max=meta.msize_max)
    if fid == _GET_SMP_PROCESSOR_ID:
        last = possible_cpus() - 1
        return ScalarBounds.from_ranges(umin=0, umax=last, smin=0, smax=last,
                                        u32_min=0, u32_max=last, s32_min=0, s32_max=last)
    return None


def _lookup_cannot_fail(fid: int, definition, meta) -> bool:
    """bpf_map_lookup_elem on an array map with a key known now (as root) and
    inside max_entries returns the value, never NULL."""
    return (fid == 1 and definition is not None and definition.map_type in KNOWN_KEY_MAP_TYPES
            and 0 <= meta.const_key < definition.max_entries)


# check_map_func_compatibility, the map side: helpers each map type allows.
_MAP_HELPERS = {
    "prog_array": {12}, "perf_event_array": {6, 22, 25, 55}, "ringbuf": {130, 131, 132, 133, 134},
    "stack_trace": {27}, "cgroup_array": {37, 41}, "devmap": {51, 1}, "queue": {87, 88, 89},
    "stack": {87, 88, 89},
}
_HELPER_MAPS = {12: {"prog_array"}, 130: {"ringbuf"}, 131: {"ringbuf"}, 134: {"ringbuf"},
                87: {"queue", "stack"}, 88: {"queue", "stack"}, 89: {"queue", "stack"}}
_MAP_TYPE_IDS = {"hash": 1, "array": 2, "prog_array": 3, "perf_event_array": 4, "percpu_hash": 5,
                 "percpu_array": 6, "stack_trace": 7, "cgroup_array": 8, "lru_hash": 9, "lru_percpu_hash": 10,
                 "lpm_trie": 11, "array_of_maps": 12, "hash_of_maps": 13, "devmap": 14, "sockmap": 15,
                 "cpumap": 16, "xskmap": 17, "sockhash": 18, "queue": 22, "stack": 23, "ringbuf": 27}


def _check_map_compat(definition, fid: int, name: str) -> None:
    mt = definition.map_type
    allowed = _MAP_HELPERS.get(mt)
    bad = (allowed is not None and fid not in allowed and fid not in (1, 2, 3) or
           (allowed is not None and fid in (1, 2, 3) and mt in ("prog_array", "perf_event_array", "ringbuf",
                                                                 "stack_trace", "cgroup_array")))
    if fid in _HELPER_MAPS and mt not in _HELPER_MAPS[fid]:
        bad = True
    if bad:
        raise Reject(M.MAP_FUNC_MISMATCH, map_type=_MAP_TYPE_IDS.get(mt, mt), name=name, id=fid)


def _check_sane_variable(var, ptr_type: RegType) -> None:
    """``check_reg_sane_offset`` for a variable offset: its minimum must be
    bounded and within BPF_MAX_VAR_OFF of zero."""
    if var.smin == S64_MIN:
        raise Reject(M.PTR_MATH_UNBOUNDED, type=ptr_type)
    if not -BPF_MAX_VAR_OFF < var.smin < BPF_MAX_VAR_OFF:
        raise Reject(M.PTR_OUT_OF_BOUNDS, value=var.smin, type=ptr_type)


def _local_call(env: Env, state: State, insn: Instruction, pc: int) -> list:
    if len(state.frames) >= MAX_CALL_FRAMES:
        raise Reject(M.CALL_STACK_TOO_DEEP, frames=len(state.frames) + 1)
    target = pc + 1 + insn.imm
    if target in env.global_functions:
        from .globals import call_global
        return call_global(env, state, pc, env.global_functions[target])
    caller = state.frame
    regs = [NOT_INIT] * 11
    for r in range(1, 6):
        regs[r] = caller.regs[r]
    frameno = len(state.frames)
    regs[BPF_REG_FP] = replace(pointer(RegType.PTR_TO_STACK), frameno=frameno)
    state.frames.append(Frame(regs, {}, frameno, pc, target))
    return [(target, state)]


def _exit(env: Env, state: State, insn: Instruction, pc: int) -> list:
    if len(state.frames) > 1:
        r0 = read_reg(state, 0)
        callee = state.frames.pop()
        # any stack pointer, the caller's too: the kernel refuses them all
        if r0.type is RegType.PTR_TO_STACK:
            raise Reject(M.RETURN_STACK_PTR)
        caller = state.frame
        if callee.in_callback:
            check_callback_return(env, r0)
            return return_to_call_site(env, state, callee.callsite)
        for r in range(1, 6):
            caller.regs[r] = NOT_INIT
        caller.regs[0] = r0
        return [(callee.callsite + 1, state)]
    if state.refs:
        leak = Reject(M.REFERENCE_LEAK)
        leak.detail = "\n".join(M.UNRELEASED_REFERENCE(id=rid, insn=env.ref_sites.get(rid, -1))
                                for rid in state.refs)
        raise leak
    check_return(env, state)
    return []


# --- dispatch ---------------------------------------------------------------------------

_CLASS = {ALU: _alu, ALU64: _alu, LDX: _ldx, STX: _stx, ST: _st, LD: _ld, JMP: _jmp, JMP32: _jmp}


def step(env: Env, state: State, pc: int) -> list[tuple[int, State]]:
    """Run instruction ``pc`` on ``state`` (modified in place); its successors."""
    insn = env.program.instructions[pc]
    cls = insn.opcode & 0x07
    error = instruction_error(env.program, pc)
    if error is not None:
        for regno in error.reads_first:
            read_reg(state, regno)
        raise Reject(M.Message("{t}", error.errno), t=error.message)
    return _CLASS[cls](env, state, insn, pc)
