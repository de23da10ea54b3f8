"""Path exploration, as ``do_check``: depth-first over every path, forking
at conditional jumps, pruning at checkpoints.

* *Prune points* are the kernel's (``visit_insn``): conditional jumps and
  their targets, ``ja`` targets, call return points, local calls and their
  callees' entries, callback-calling helper calls.  Only there is the state
  compared with the checkpoints (``is_state_visited``).
* A *checkpoint* is a snapshot of the state at a prune point.  As in the
  kernel one is taken only when at least 2 jumps and 8 instructions were
  processed since the last one (or at a forced point: ``may_goto``,
  callback-calling helpers), and inside a loop (an unfinished checkpoint at
  the same instruction) only every 20 jumps or 100 instructions.
* Each checkpoint carries ``branches``: the paths still being explored
  below it.  Only finished checkpoints (``branches == 0``) may prune a new
  arrival.  When one finishes, its dead registers (``verifier.liveness``)
  become NOT_INIT (``clean_func_state``): they match anything.
* A new arrival that *exactly* equals an unfinished checkpoint at the same
  instruction is an infinite loop.
* Every instruction reached counts (a pruned arrival too); past 1,000,000
  the program is too large.
* Checkpoints live in the kernel's hash buckets (``explored_state``: the
  instruction xor the frame's call site, modulo the program length), so the
  statistics ``max_states_per_insn`` and ``peak_states`` count as the
  kernel's do.  Checkpoints that keep missing are evicted
  (miss > 3 * hit + 3).

* Every path keeps the history of the instructions it ran since its last
  checkpoint; a use that needs a scalar exact walks it back and marks the
  scalar precise in the checkpoints it came from (``verifier.backtrack``);
  a path pruned against a checkpoint inherits that checkpoint's marks.  An
  old checkpoint's imprecise scalar matches any scalar.
* Stack slots are cleaned like registers, from the reads the paths recorded
  (``verifier.liveness.StackLiveness``).

Simplified against the kernel: see ``verifier/__init__``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import messages as M
from .backtrack import Demands, Marks, inherit, mark_everything
from .callbacks import (
    callback_sites,
    covered_at_call_site,
    took_callback_return,
    widen_after_callback,
)
from .cfg import is_ldimm64, is_pseudo_call, is_pseudo_func
from .checks import Env, Reject, live_registers
from .liveness import ALL_SLOTS, StackLiveness, slot_mask
from .state import BPF_REG_FP, NOT_INIT, RegType, State, initial_state, state_key, state_within
from .transfer import step

COMPLEXITY_LIMIT = int(os.environ.get("EBPFVM_LIMIT", "1000000"))
# is_state_visited: a new checkpoint needs this many jumps and instructions since the last one
CHECKPOINT_JMPS, CHECKPOINT_INSNS = 2, 8
# ... and inside a loop this many (either)
LOOP_CHECKPOINT_JMPS, LOOP_CHECKPOINT_INSNS = 20, 100
# helpers that call a callback synchronously (a forced checkpoint) or later (a prune point)
SYNC_CALLBACK_HELPERS = frozenset({164, 180, 181, 209})  # for_each_map_elem, find_vma, loop, user_ringbuf_drain
ASYNC_CALLBACK_HELPERS = frozenset({170})  # timer_set_callback


@dataclass(eq=False, slots=True)
class Checkpoint:
    state: State
    key: tuple
    parent: Checkpoint | None
    pc: int
    branches: int = 1
    hits: int = 0
    misses: int = 0
    evicted: bool = False
    history: list = field(default_factory=list)  # the path from ``parent`` to here (verifier.backtrack)
    precise: Marks = field(default_factory=Marks)


@dataclass(frozen=True)
class PrunePoints:
    """``mark_prune_point`` / ``mark_force_checkpoint`` of ``visit_insn``."""

    points: frozenset[int]
    forced: frozenset[int]


def prune_points(program) -> PrunePoints:
    points: set[int] = set()
    forced: set[int] = set()
    insns = program.instructions
    for pc, insn in enumerate(insns):
        if pc > 0 and is_ldimm64(insns[pc - 1]):
            continue
        if is_pseudo_func(insn):
            points.update((pc, pc + 2, pc + 1 + insn.imm))
            continue
        cls, op = insn.opcode & 0x07, insn.opcode >> 4
        if cls not in (0x05, 0x06) or op == 0x9:
            continue
        if op == 0x8:  # call
            points.add(pc + 1)
            if is_pseudo_call(insn):
                points.update((pc, pc + 1 + insn.imm))
            elif insn.src == 0 and insn.imm in SYNC_CALLBACK_HELPERS:
                points.add(pc)
                forced.add(pc)
            elif insn.src == 0 and insn.imm in ASYNC_CALLBACK_HELPERS:
                points.add(pc)
            continue
        if op == 0x0:  # ja / gotol
            points.add(pc + 1 + (insn.imm if cls == 0x06 else insn.off))
            continue
        points.update((pc, pc + 1 + insn.off))  # conditional jumps and may_goto
        if op == 0xE:
            forced.add(pc)
    return PrunePoints(frozenset(points), frozenset(forced))


@dataclass
class Stats:
    processed_insns: int = 0
    total_states: int = 0
    peak_states: int = 0
    max_states_per_insn: int = 0
    mark_read: int = 0
    jmps_processed: int = 0


PRUNED, LOOP = "pruned", "loop"


class Visited:
    """The checkpoints, in the kernel's hash buckets (newest first)."""

    def __init__(self, env: Env, stats: Stats) -> None:
        program = env.program
        self.size = max(1, len(program.instructions))
        self.buckets: dict[int, list[Checkpoint]] = {}
        self.points = prune_points(program)
        self.callback_sites = callback_sites(program)
        self.live_regs = live_registers(env)
        self.stack_live = StackLiveness(program)
        self.stats = stats
        self.live = 0  # checkpoints in buckets plus evicted unfinished ones
        self.prev_jmps = 0
        self.prev_insns = 0
        self.pruned_by: Checkpoint | None = None

    def bucket(self, pc: int, state: State) -> list[Checkpoint]:
        return self.buckets.setdefault(((pc ^ state.frame.callsite) & 0xFFFF_FFFF) % self.size, [])

    def visit(self, pc: int, state: State, parent: Checkpoint | None) -> str | Checkpoint | None:
        """``is_state_visited``: PRUNED, LOOP, the new checkpoint, or None."""
        stats = self.stats
        force = pc in self.points.forced
        jmps = stats.jmps_processed - self.prev_jmps
        insns = stats.processed_insns - self.prev_insns
        add = force or (jmps >= CHECKPOINT_JMPS and insns >= CHECKPOINT_INSNS)
        found = self.bucket(pc, state)
        count = 0
        key = None
        for old in list(found):
            count += 1
            if old.pc != pc:
                continue
            if old.branches > 0:
                if pc in self.callback_sites:  # a callback's iterations reached a fixpoint (callbacks.py)
                    if covered_at_call_site(old.state, state):
                        old.hits += 1
                        return PRUNED
                elif _maybe_looping(old.state, state):
                    if key is None:
                        key = state_key(state)
                    if old.key == key:
                        return LOOP
                if not force and jmps < LOOP_CHECKPOINT_JMPS and insns < LOOP_CHECKPOINT_INSNS:
                    add = False
            elif state_within(old.state, state, old.precise):
                old.hits += 1
                self.pruned_by = old
                return PRUNED
            if add:
                old.misses += 1
            n = 64 if force and old.branches > 0 else 3
            if old.misses > old.hits * n + n:
                found.remove(old)
                old.evicted = True
                if old.branches == 0:
                    self.live -= 1
        stats.max_states_per_insn = max(stats.max_states_per_insn, count)
        if not add:
            return None
        new = Checkpoint(state.copy(), key if key is not None else state_key(state), parent, pc)
        found.insert(0, new)
        self.live += 1
        stats.total_states += 1
        stats.peak_states = max(stats.peak_states, self.live)
        self.prev_jmps = stats.jmps_processed
        self.prev_insns = stats.processed_insns
        return new

    def close(self, cp: Checkpoint) -> None:
        """A checkpoint finished: it may prune from now on, with its dead
        registers cleaned; an evicted one is freed."""
        if cp.evicted:
            self.live -= 1
            return
        self.clean(cp.pc, cp.state)

    def clean(self, pc: int, state: State) -> None:
        """``clean_verifier_state``: every frame's registers dead at its
        instruction (the innermost frame's ``pc``, the call site for the
        others) become NOT_INIT."""
        frames = state.frames
        for depth, frame in enumerate(frames):
            ip = pc if depth == len(frames) - 1 else frames[depth + 1].callsite
            live = self.live_regs[ip] if 0 <= ip < len(self.live_regs) else -1
            regs = frame.regs
            for r in range(10):
                if not live >> r & 1:
                    regs[r] = NOT_INIT
            slots = self.stack_live.live_before(ip)
            for index in [i for i in frame.stack if not slots >> i & 1]:
                del frame.stack[index]


def record_stack_reads(stack_live: StackLiveness, state: State, insn, pc: int) -> None:
    """The stack slots instruction ``pc`` may read (before it runs), at the
    instruction of the frame they belong to (``pc``, or that frame's
    pending call)."""
    cls = insn.opcode & 0x07
    regs = state.regs
    if cls == 0x01 or (cls == 0x03 and insn.opcode & 0xE0 == 0xC0):
        base = regs[insn.src] if cls == 0x01 else regs[insn.dst]
        if base.type is RegType.PTR_TO_STACK:
            size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[insn.opcode & 0x18]
            mask = slot_mask(base.off + base.var.value + insn.off, size) if base.var.is_const() else ALL_SLOTS
            _read_frame(stack_live, state, base.frameno, pc, mask)
    elif insn.opcode == 0x85 and insn.src != 1:  # a helper may read any stack memory it is given
        for r in range(1, 6):
            if regs[r].type is RegType.PTR_TO_STACK:
                _read_frame(stack_live, state, regs[r].frameno, pc, ALL_SLOTS)


def _read_frame(stack_live: StackLiveness, state: State, frameno: int, pc: int, mask: int) -> None:
    if frameno >= len(state.frames) - 1:
        stack_live.read(pc, mask)
    else:
        stack_live.read(state.frames[frameno + 1].callsite, mask)  # the frame's pending call


def _maybe_looping(old: State, cur: State) -> bool:
    """``states_maybe_looping``: same depth, same registers in the innermost frame."""
    return len(old.frames) == len(cur.frames) and old.frame.regs == cur.frame.regs


@dataclass
class Outcome:
    error: Reject | None
    error_insn: int | None
    stats: Stats
    last_state: State | None = None
    since: tuple[int, int, int] = (0, 0, 0)  # for the next function: see ``explore``


def _finish(cp: Checkpoint | None, visited: Visited) -> None:
    """A path ended: the checkpoints it ran through lose one branch; those
    left with none are finished."""
    while cp is not None:
        cp.branches -= 1
        if cp.branches > 0:
            return
        visited.close(cp)
        cp = cp.parent


def _advance(successors: list, stack: list, cp: Checkpoint | None, log=None, pc: int = -1,
             history: list | None = None) -> bool:
    """Push a second successor (the jump target: the kernel goes on with the
    fall-through) with a copy of the path's history; False when the path ended."""
    if not successors:
        return False
    if len(successors) == 2:
        if cp is not None:
            cp.branches += 1
        stack.append((successors[1][0], successors[1][1], cp, list(history or ())))
        if log is not None:
            log.pushed(pc, successors[1][1])
    return True


def explore(env: Env, log=None, entry: int = 0, start: State | None = None, stats: Stats | None = None,
            since: tuple[int, int, int] = (0, 0, 0)) -> Outcome:
    """Explore every path from ``entry`` (the main program; a global function
    from its prototype's ``start`` state, counting on in ``stats``, with the
    jumps and instructions of the last checkpoint and the number of states
    ``since`` the functions verified before: the kernel frees their states
    but does not uncount them); ``log`` (a
    :class:`verifier.log.LogBuilder`, only when ``log_level >= 1``) is told of
    each processed instruction."""
    program = env.program
    stats = stats if stats is not None else Stats()
    visited = Visited(env, stats)
    visited.prev_jmps, visited.prev_insns, visited.live = since
    points = visited.points.points
    insns = program.instructions
    stack: list[tuple[int, State, Checkpoint | None, list]] = [
        (entry, start if start is not None else initial_state(), None, [])]
    needs = Demands(env)
    while stack:
        pc, state, cp, history = stack.pop()
        if log is not None:
            log.popped(pc, state)
        while True:
            stats.processed_insns += 1
            if stats.processed_insns > COMPLEXITY_LIMIT:
                return Outcome(Reject(M.TOO_LARGE, count=stats.processed_insns), pc, stats, state)
            if pc in points:
                seen = visited.visit(pc, state, cp)
                if seen is LOOP:
                    return Outcome(Reject(M.INFINITE_LOOP, insn=pc), pc, stats, state)
                if seen is PRUNED:
                    if log is not None:
                        log.pruned(pc)
                    old, visited.pruned_by = visited.pruned_by, None
                    if old is None:  # covered by an unfinished checkpoint: its marks may yet grow
                        mark_everything(cp)
                    else:  # what the old path needed exactly, this one needs too
                        inherit(old.precise, old.state, history, cp, insns)
                    _finish(cp, visited)
                    break
                if seen is not None:
                    seen.history, history = history, []
                    cp = seen
            if log is not None:
                log.insn(pc, state)
            if insns[pc].opcode & 0x07 in (0x05, 0x06):
                stats.jmps_processed += 1
            depth = len(state.frames) - 1
            insn = insns[pc]
            if insn.dst > BPF_REG_FP or insn.src > BPF_REG_FP:
                before = None  # no such register: ``step`` rejects it with the kernel's words
            else:
                record_stack_reads(visited.stack_live, state, insn, pc)
                before = needs.before(state, pc)
            try:
                successors = step(env, state, pc)
            except Reject as exc:
                return Outcome(exc, pc, stats, state)
            needs.after(state, pc, depth, before, successors, history, cp)
            if took_callback_return(env):  # (before the log prints the state it returns with)
                widen_after_callback(env, successors[0][0], successors[0][1], cp)
            if log is not None:
                log.after(pc, successors, env.notes)
            env.notes.clear()
            if not _advance(successors, stack, cp, log, pc, history):
                _finish(cp, visited)
                break
            pc, state = successors[0]
    return Outcome(None, None, stats, since=(visited.prev_jmps, visited.prev_insns, visited.live))
