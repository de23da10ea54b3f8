"""Path exploration, as ``do_check``: depth-first over every path, forking
at conditional jumps, pruning at checkpoints.

* A *checkpoint* is a snapshot of the state at a prune point (the target of
  a jump, the instruction after a conditional jump or a call).  Each carries
  ``branches``: the paths still being explored below it.  Only finished
  checkpoints (``branches == 0``) may prune a new arrival, as in the kernel —
  a loop head whose first iteration is still running covers nothing yet.
* A new arrival that *exactly* equals an unfinished checkpoint at the same
  instruction is an infinite loop.
* Every instruction run counts; past 1,000,000 the program is too large.

Simplified against the kernel (documented in ``verifier/__init__``): no
liveness or precision tracking (pruning compares every register, so it
prunes less than the kernel does, never more), and checkpoints are taken at
every prune point instead of the kernel's throttled rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import messages as M
from .checks import Env, Reject
from .state import State, initial_state, state_key, state_within
from .transfer import step

import os
LOOP_CHECKPOINT_GAP = 100
COMPLEXITY_LIMIT = int(os.environ.get("EBPFVM_LIMIT", 1_000_000))


@dataclass(eq=False)
class Checkpoint:
    state: State
    key: tuple
    parent: "Checkpoint | None"
    pc: int
    branches: int = 1
    hits: int = 0
    misses: int = 0


class Visited:
    """The checkpoints per instruction: finished ones (they prune) and the
    exact images of unfinished ones (meeting one again is an infinite loop)."""

    def __init__(self) -> None:
        self.finished: dict[int, list[Checkpoint]] = {}
        self.open: dict[int, dict[tuple, int]] = {}
        self.count: dict[int, int] = {}

    def add(self, cp: Checkpoint) -> int:
        keys = self.open.setdefault(cp.pc, {})
        keys[cp.key] = keys.get(cp.key, 0) + 1
        self.count[cp.pc] = self.count.get(cp.pc, 0) + 1
        return self.count[cp.pc]

    def prune(self, pc: int, state: State) -> bool:
        """Whether a finished checkpoint covers ``state``.  Checkpoints that
        keep missing are dropped, as the kernel does (miss > 3 * hit + 3),
        so long straight paths through a loop do not make this quadratic."""
        found = self.finished.get(pc)
        if not found:
            return False
        keep = []
        hit = False
        for i, old in enumerate(found):
            if state_within(old.state, state):
                old.hits += 1
                keep.extend(found[i:])
                hit = True
                break
            old.misses += 1
            if old.misses <= 3 * old.hits + 3:
                keep.append(old)
        self.finished[pc] = keep
        return hit

    def close(self, cp: Checkpoint) -> None:
        keys = self.open[cp.pc]
        keys[cp.key] -= 1
        if not keys[cp.key]:
            del keys[cp.key]
        self.finished.setdefault(cp.pc, []).append(cp)


@dataclass
class Stats:
    processed_insns: int = 0
    total_states: int = 0
    peak_states: int = 0
    max_states_per_insn: int = 0
    mark_read: int = 0


@dataclass
class Outcome:
    error: Reject | None
    error_insn: int | None
    stats: Stats
    last_state: State | None = None


def prune_points(program) -> frozenset[int]:
    """Jump targets, fall-throughs of conditional jumps, call return points."""
    points = set()
    insns = program.instructions
    for pc, insn in enumerate(insns):
        cls, op = insn.opcode & 0x07, insn.opcode >> 4
        if cls in (0x05, 0x06) and op not in (0x9,):
            if op == 0x8:
                points.add(pc + 1)
                if insn.src == 1:
                    points.add(pc + 1 + insn.imm)
                continue
            off = insn.imm if (cls == 0x06 and op == 0) else insn.off
            points.add(pc + 1 + off)
            if op != 0:
                points.add(pc + 1)
    return frozenset(points)


def _finish(cp: Checkpoint | None, visited: Visited) -> None:
    """A path ended: the checkpoints it ran through lose one branch; those
    left with none are finished."""
    while cp is not None:
        cp.branches -= 1
        if cp.branches > 0:
            return
        visited.close(cp)
        cp = cp.parent


def _advance(successors: list, stack: list, cp: Checkpoint | None, log=None, pc: int = -1) -> bool:
    """Push a second successor (the jump target: the kernel goes on with the
    fall-through); False when the path ended."""
    if not successors:
        return False
    if len(successors) == 2:
        if cp is not None:
            cp.branches += 1
        stack.append((successors[1][0], successors[1][1], cp))
        if log is not None:
            log.pushed(pc, successors[1][1])
    return True


def explore(env: Env, log=None) -> Outcome:
    """Explore every path; ``log`` (a :class:`verifier.log.LogBuilder`, only
    when ``log_level >= 1``) is told of each processed instruction."""
    program = env.program
    points = prune_points(program)
    stats = Stats()
    visited = Visited()
    stack: list[tuple[int, State, Checkpoint | None]] = [(0, initial_state(), None)]
    live = 0
    last_added = -LOOP_CHECKPOINT_GAP
    while stack:
        pc, state, cp = stack.pop()
        if log is not None:
            log.popped(pc, state)
        while True:
            if pc in points:
                looping = visited.open.get(pc)
                key = state_key(state) if looping else None
                if looping and key in looping:
                    return Outcome(Reject(M.INFINITE_LOOP, insn=pc), pc, stats, state)
                if visited.prune(pc, state):
                    _finish(cp, visited)
                    break
                # in a loop (an unfinished checkpoint here) add states sparingly,
                # as the kernel does: every 100 instructions at most
                sparse = looping and stats.processed_insns - last_added < LOOP_CHECKPOINT_GAP
                if not sparse:
                    last_added = stats.processed_insns
                    new = Checkpoint(state.copy(), key if key is not None else state_key(state), cp, pc)
                    per_insn = visited.add(new)
                    cp = new
                    live += 1
                    stats.total_states += 1
                    stats.peak_states = max(stats.peak_states, live)
                    stats.max_states_per_insn = max(stats.max_states_per_insn, per_insn)
            stats.processed_insns += 1
            if stats.processed_insns > COMPLEXITY_LIMIT:
                return Outcome(Reject(M.TOO_LARGE, count=stats.processed_insns), pc, stats, state)
            if log is not None:
                log.insn(pc, state)
            try:
                successors = step(env, state, pc)
            except Reject as exc:
                return Outcome(exc, pc, stats, state)
            if log is not None:
                log.after(pc, successors)
            if not _advance(successors, stack, cp, log, pc):
                _finish(cp, visited)
                break
            pc, state = successors[0]
    return Outcome(None, None, stats)
