"""``verify(program, ...) -> VerifierResult``: the verifier's entry point."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import messages as M
from .checks import Env, Reject
from .explore import Outcome, Stats, explore
from .globals import entry_state, global_functions, main_prototype_problem
from .state import MAX_BPF_STACK
from .structure import check_structure

ACCEPT, REJECT = "accept", "reject"
PROG_FLAG_STRICT_ALIGNMENT = 1 << 0
PROG_FLAG_ANY_ALIGNMENT = 1 << 1


@dataclass(frozen=True)
class VerifierError:
    """The rejection: the instruction (None for the whole program), the
    kernel's last log line and the errno name of the failed load."""

    insn: int | None
    message: str | None
    errno: str


@dataclass
class VerifierResult:
    verdict: str
    error: VerifierError | None
    log: str
    stats: dict = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPT


def _prog_type(name: str | None):
    if name is None:
        return None
    try:
        from ebpfvm.progtypes import get_prog_type
        return get_prog_type(name)
    except Exception:
        return None


def _stats_line(stats: Stats) -> str:
    return M.STATS(insns=stats.processed_insns, max_states=stats.max_states_per_insn,
                   total_states=stats.total_states, peak_states=stats.peak_states, mark_read=stats.mark_read)


def _combined_stack(env: Env) -> Reject | None:
    """``check_max_stack_depth``: along every call chain the frames' stacks,
    each rounded up to 16 bytes, must fit in 512 bytes.  The chains are the
    local calls reachable from each subprogram.  16 is the JIT's granularity
    (``jit_requested``: the JIT is on by default, and always on with
    CONFIG_BPF_JIT_ALWAYS_ON); a kernel running BPF in its interpreter rounds
    to 32 and so refuses a little more."""
    program = env.program
    from .cfg import subprograms
    calls: dict[int, list[int]] = {}
    for sub in subprograms(program):
        calls[sub.start] = [pc + 1 + program.instructions[pc].imm for pc in sub.slots
                            if program.instructions[pc].opcode == 0x85 and program.instructions[pc].src == 1]

    def depth(start: int) -> int:
        return (env.stack_depth.get(start, 0) + 15) // 16 * 16

    def walk(start: int, total: int, frames: int, seen: tuple) -> Reject | None:
        total += depth(start)
        if total > MAX_BPF_STACK:
            return Reject(M.COMBINED_STACK, calls=frames, size=total)
        for callee in calls.get(start, []):
            if callee in seen:
                continue
            found = walk(callee, total, frames + 1, seen + (callee,))
            if found:
                return found
        return None

    return walk(0, 0, 1, (0,))


def verify(program, *, prog_type: str | None = None, log_level: int = 0, prog_flags: int = 0,
           expected_attach_type: str | None = None, privileged: bool = True) -> VerifierResult:
    """Verify ``program`` as the Linux 6.18 verifier would load it as root
    with ``prog_type`` (default: ``program.prog_type``).  Rejections are
    results (``verdict == "reject"``) with the kernel's error line."""
    start = time.perf_counter()
    prog_type = prog_type or getattr(program, "prog_type", None)
    attach = expected_attach_type or getattr(program, "expected_attach_type", None)
    structural = check_structure(program, privileged=privileged)
    if structural is not None:
        line = structural.message
        text = line or ""
        if log_level >= 1 and line:
            from .log import structural_log
            text = structural_log(program, line, log_level, int((time.perf_counter() - start) * 1e6))
        return VerifierResult(REJECT, VerifierError(structural.insn, line, structural.errno), text,
                              {"processed_insns": 0, "total_states": 0, "peak_states": 0, "max_states_per_insn": 0,
                               "time_us": int((time.perf_counter() - start) * 1e6)})
    ptype = _prog_type(prog_type)
    layout = ptype.layout_for(attach) if ptype is not None else None
    strict = bool(prog_flags & PROG_FLAG_STRICT_ALIGNMENT) and not prog_flags & PROG_FLAG_ANY_ALIGNMENT
    env = Env(program, prog_type, layout, ptype, strict, privileged, tuple(getattr(program, "maps", ()) or ()),
              attach)
    if getattr(program, "prog_type", None) != prog_type:
        try:
            from ebpfvm.program import Program
            env.program = Program(program.instructions, prog_type=prog_type, maps=env.maps,
                                  line_info=getattr(program, "line_info", ()),
                                  functions=getattr(program, "functions", ()))
        except Exception:
            pass
    log = None
    if log_level >= 1:
        from .log import LogBuilder
        log = LogBuilder(env.program, log_level, env.maps)
    env.global_functions = global_functions(env.program)
    note = main_prototype_problem(env)
    if log is not None and note is not None:
        log.note(note)
    outcome = explore(env, log)
    if outcome.error is None and env.global_functions:
        outcome = _verify_global_functions(env, log, outcome)
    error = outcome.error
    if error is None:
        error = _combined_stack(env)
        insn = None
    else:
        insn = outcome.error_insn
    stats = outcome.stats
    lines = []
    if error is not None:
        lines.append(error.text)
    lines.append(_stats_line(stats))
    info = {"processed_insns": stats.processed_insns, "total_states": stats.total_states,
            "peak_states": stats.peak_states, "max_states_per_insn": stats.max_states_per_insn,
            "time_us": int((time.perf_counter() - start) * 1e6)}
    text = "\n".join(lines) + "\n"
    if log is not None:
        error_text = None
        if error is not None:
            error_text = log.error_lines(error.text, insn, outcome.last_state)
            if error.detail:  # lines the kernel prints before the error's own
                error_text = f"{error.detail}\n{error_text}"
        text = log.finish(error_text, info["time_us"], _stack_depths(env), stats)
    if error is not None:
        return VerifierResult(REJECT, VerifierError(insn, error.text, error.errno), text, info)
    return VerifierResult(ACCEPT, None, text, info)


def _verify_global_functions(env: Env, log, main):  # type: ignore[no-untyped-def]
    """``do_check_subprogs``: each global function a path called, once, on its
    own, by function number (and again while verifying them calls new ones)."""
    outcome = main
    if log is not None:
        log.function_verified(None)
    by_number = sorted(env.global_functions.values(), key=lambda fn: fn.number)
    done: set[int] = set()
    new = True
    while new:
        new = False
        for fn in by_number:
            if fn.entry not in env.called_globals or fn.entry in done:
                continue
            done.add(fn.entry)
            new = True
            if log is not None:
                log.function_start(M.GLOBAL_VALIDATING(name=fn.name, n=fn.number))
            try:
                start = entry_state(env, fn)
            except Reject as exc:
                return Outcome(exc, fn.entry, outcome.stats)
            outcome = explore(env, log, fn.entry, start, outcome.stats, outcome.since)
            if outcome.error is not None:
                return outcome
            if log is not None:
                log.function_verified(M.GLOBAL_SAFE(n=fn.number, name=fn.name))
    return outcome


def _stack_depths(env: Env) -> list[int]:
    """Each subprogram's stack depth (callbacks are subprograms too), as the
    log's ``stack depth 8+0``: rounded up to 8 bytes, plus the 3 slots the
    kernel adds to a function whose bpf_loop calls it inlines
    (``optimize_bpf_loop``)."""
    from .cfg import subprogram_starts
    starts = subprogram_starts(env.program)
    ends = starts[1:] + (len(env.program.instructions),)
    depths = []
    for start, end in zip(starts, ends):
        depth = (env.stack_depth.get(start, 0) + 7) // 8 * 8
        if any(start <= pc < end and inlined for pc, (inlined, _) in env.loop_inline.items()):
            depth += 3 * 8
        depths.append(depth)
    return depths
