"""Callbacks of bpf_loop and bpf_for_each_map_elem, verified to a fixpoint
as Linux 6.18 does it.

* At the helper call the caller goes on as if the callback ran no times
  (r0 per the helper's prototype), and the callback's entry is pushed: a
  new frame with the arguments the helper passes (``push_callback_call``).
* The callback's ``exit`` returns to the *call instruction* with the
  caller's state as the callback left it (stack written through the context
  pointer...), so the call runs again and schedules the next iteration
  (``prepare_func_exit``).  Before that, scalars that changed since the
  previous visit of the call site and that no check needed exactly are
  widened to unknown (``widen_imprecise_scalars``, see :mod:`.precision`).
* The call instruction is a forced checkpoint; an arrival that an
  unfinished checkpoint there covers (range containment, as for iterator
  loops) has reached the fixpoint and ends its path (explore asks
  :func:`covered_at_call_site`).
* bpf_loop stops scheduling once the callbacks simulated from a frame reach
  the largest possible ``nr_loops`` (``callback_depth``); for_each_map_elem
  has no such bound: it ends by convergence or at the complexity limit.
"""

from __future__ import annotations

from dataclasses import replace

from . import messages as M
from .checks import Reject
from .precision import demand_precision
from .state import (
    BPF_REG_FP,
    MAX_CALL_FRAMES,
    NOT_INIT,
    Frame,
    Reg,
    RegType,
    Slot,
    StackSlot,
    State,
    pointer,
    scalar,
    slot_within,
    state_within,
)

BPF_FUNC_FOR_EACH_MAP_ELEM, BPF_FUNC_LOOP = 164, 181
# helper -> the argument register holding the callback
CALLBACK_HELPERS = {BPF_FUNC_FOR_EACH_MAP_ELEM: 2, BPF_FUNC_LOOP: 2}


def callback_sites(program) -> frozenset[int]:
    """The instructions calling a callback-calling helper."""
    return frozenset(pc for pc, insn in enumerate(program.instructions)
                     if insn.opcode == 0x85 and insn.src == 0 and insn.imm in CALLBACK_HELPERS)


def schedule_callback(env, state: State, fid: int, pc: int) -> tuple[int, State] | None:
    """``push_callback_call`` at helper call ``pc`` (arguments checked,
    ``state`` not yet changed by the call): the callback's entry state, or
    None when bpf_loop has simulated as many iterations as ``nr_loops`` allows."""
    fn = state.regs[CALLBACK_HELPERS[fid]]
    if fn.type is not RegType.PTR_TO_FUNC or fn.func < 0:
        return None
    caller = state.frame
    if fid == BPF_FUNC_LOOP:
        note_loop_inlining(env, state, pc, fn.func)
        demand_precision(env, state.regs[1], state.regs[4])  # the iteration bound and the flags
        if caller.callback_depth >= state.regs[1].var.umax:
            caller.callback_depth = 0  # "bpf_loop iteration limit reached"
            return None
    if len(state.frames) >= MAX_CALL_FRAMES:
        raise Reject(M.CALL_STACK_TOO_DEEP, frames=len(state.frames) + 1)
    inner = state.copy()
    outer = inner.frame
    frameno = len(inner.frames)
    regs = [NOT_INIT] * 11
    if fid == BPF_FUNC_LOOP:  # callback(u32 index, void *ctx)
        regs[1] = scalar()
        regs[2] = outer.regs[3]
    else:  # callback(map, key, value, ctx)
        regs[1] = outer.regs[1]
        regs[2] = replace(pointer(RegType.PTR_TO_MAP_KEY), map=outer.regs[1].map)
        regs[3] = replace(pointer(RegType.PTR_TO_MAP_VALUE), map=outer.regs[1].map)
        regs[4] = outer.regs[3]
    regs[BPF_REG_FP] = replace(pointer(RegType.PTR_TO_STACK), frameno=frameno)
    outer.callback_depth += 1
    caller.callback_depth = 0
    inner.frames.append(Frame(regs, {}, frameno, pc, fn.func, True))
    return (fn.func, inner)


def note_loop_inlining(env, state: State, pc: int, callback: int) -> None:
    """``update_loop_inline_state``: the kernel inlines a bpf_loop call when
    every time it was reached its flags were 0 and its callback the same
    function; each such call costs its function 24 more bytes of stack."""
    flags = state.regs[4]
    zero = flags.is_scalar and flags.var.is_const() and flags.var.value == 0
    seen = env.loop_inline.get(pc)
    env.loop_inline[pc] = (zero, callback) if seen is None else (seen[0] and zero and seen[1] == callback, callback)


def return_to_call_site(env, state: State, site: int) -> list[tuple[int, State]]:
    """The callback's frame (created at helper call ``site``) is gone: back
    to the call instruction, whose re-execution schedules the next iteration
    (the caller's registers are as they were at the call)."""
    env.callback_returned = True
    return [(site, state)]


def took_callback_return(env) -> bool:
    """Whether the instruction just run returned from a callback (asked, and
    forgotten, after every instruction)."""
    returned, env.callback_returned = env.callback_returned, False
    return returned


def _same_call_sites(old: State, cur: State) -> bool:
    return len(old.frames) == len(cur.frames) and all(
        of.callsite == cf.callsite for of, cf in zip(old.frames, cur.frames))


def widen_after_callback(env, pc: int, state: State, checkpoint) -> None:
    """``widen_imprecise_scalars`` against the latest checkpoint at call site
    ``pc`` on this path (``find_prev_entry``; ``checkpoint`` is the path's
    newest, linked to older ones by ``parent``): a scalar that differs from
    it there and was not needed exactly becomes unknown."""
    prev = checkpoint
    while prev is not None and not (prev.pc == pc and prev.branches > 0 and _same_call_sites(prev.state, state)):
        prev = prev.parent
    if prev is None:
        return
    # Precision from .precision's record, not the checkpoint's backtracked
    # marks: those mark every scalar precise when a walk crosses a callback
    # frame (verifier.backtrack), which would stop all widening.
    needed = env.precise_slots
    for old, cur in zip(prev.state.frames, state.frames):
        cur.regs[:] = [_widened(o, c, False) for o, c in zip(old.regs, cur.regs)]
        for index, slot in list(cur.stack.items()):
            was = old.stack.get(index)
            if not (_is_spill(slot) and was is not None and _is_spill(was)):
                continue
            new = _widened(was.spilled, slot.spilled, (cur.subprog, cur.frameno, index) in needed)
            if new is not slot.spilled:
                cur.stack[index] = StackSlot(slot.kinds, new)


def _is_spill(slot: StackSlot) -> bool:
    return slot.spilled is not None and slot.kinds[0] is Slot.SPILL


def _widened(old: Reg, cur: Reg, precise: bool) -> Reg:
    """``maybe_widen_reg``."""
    if not old.is_scalar or not cur.is_scalar or precise or old == cur:
        return cur
    return scalar()


def covered_at_call_site(old: State, cur: State) -> bool:
    """An unfinished checkpoint ``old`` at a callback call site covers ``cur``:
    the iteration reached a fixpoint (``states_equal(..., RANGE_WITHIN)``).
    Iterations differ in the caller's stack (its registers are those of the
    call), so the stack slots are compared first: most arrivals fail there."""
    if len(old.frames) != len(cur.frames):
        return False
    for of, cf in zip(old.frames, cur.frames):
        for index, slot in cf.stack.items():
            was = of.stack.get(index)
            if was is not slot and not slot_within(was, slot):
                return False
    return state_within(old, cur)
