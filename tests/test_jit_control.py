"""Tail calls, bpf_loop and bpf_for_each_map_elem on the JIT (``Runtime.run(engine="jit")``):
native code end to end (``last_engine == "jit"``), with the interpreter's r0,
executed count, packet, maps, tail-call count, returning program, and the
same fault (type, pc, executed, program) where there is one."""

from __future__ import annotations

import pytest

pytest.importorskip("llvmlite")

from ebpfvm.errors import ProgramFault
from ebpfvm.runtime import Runtime

from runtime_support import array, frame, hash_map, prog_array, typed, u32, u64
from test_helpers_control import COUNT, FOR_EACH, LOOP, SUBPROGRAM_TAIL_CALL, call


def _maps(runtime: Runtime) -> dict:
    return {name: sorted(m.items()) if hasattr(m, "items") else None for name, m in runtime.maps.items()
            if m.map_type != "prog_array"}


def _outcome(runtime: Runtime, name, engine: str, **kw):  # type: ignore[no-untyped-def]
    try:
        r = runtime.run(name, engine=engine, **kw)
    except ProgramFault as fault:
        return ("fault", type(fault).__name__, str(fault), getattr(fault, "pc", None),
                getattr(fault, "executed", None), getattr(fault, "program", None))
    return ("ok", r.r0, r.packet, r.ctx, r.executed, r.tail_calls, r.program)


def differential(build, name, setup=None, runs: int = 2, **kw):  # type: ignore[no-untyped-def]
    """Run ``name`` ``runs`` times on a fresh runtime per engine; the outcomes."""
    results = {}
    for engine in ("interp", "jit"):
        runtime = build()
        if setup is not None:
            setup(runtime)
        outcomes = [_outcome(runtime, name, engine, **kw) for _ in range(runs)]
        assert runtime.last_engine == engine, runtime.fallback_reason
        results[engine] = (outcomes, _maps(runtime))
    assert results["jit"] == results["interp"]
    return results["jit"][0][0]


def tail_runtime(programs: dict[str, str], slots, *, max_entries: int = 4):  # type: ignore[no-untyped-def]
    def build() -> Runtime:
        maps = (prog_array("jt", max_entries, slots), array("count", 1))
        return Runtime([typed(text, "xdp", name=n, maps=maps) for n, text in programs.items()])
    return build


# -- tail calls -------------------------------------------------------------------------------------

def test_tail_call_chain() -> None:
    build = tail_runtime({"a": "mov %r6, %r1\n" + call(1) + "mov %r0, 1\nexit",
                          "b": "mov %r6, %r1\n" + call(2) + "mov %r0, 2\nexit",
                          "c": "mov %r0, 42\nexit"}, [(1, "b"), (2, "c")])
    outcome = differential(build, "a", packet=frame())
    assert (outcome[1], outcome[5], outcome[6]) == (42, 2, "c")


def test_tail_call_limit_is_33() -> None:
    build = tail_runtime({"self": "mov %r6, %r1\nmov %r8, 1\n" + COUNT + call(0) + "mov %r0, 7\nexit"}, [(0, "self")])
    outcome = differential(build, "self", packet=frame())
    assert outcome[1] == 7 and outcome[5] == 33
    runtime = build()
    runtime.run("self", packet=frame(), engine="jit")
    assert runtime.last_engine == "jit"
    assert runtime.maps["count"].lookup(0) == u64(34)


def test_empty_slots_do_not_count_towards_the_limit() -> None:
    build = tail_runtime({"p": "mov %r6, %r1\nmov %r8, 1\n" + COUNT + call(1) + call(0) + "mov %r0, 3\nexit"},
                         [(0, "p")])
    outcome = differential(build, "p", packet=frame())
    assert (outcome[1], outcome[5]) == (3, 33)


@pytest.mark.parametrize("slot", [1, 3, 4, -1])
def test_failed_tail_call_falls_through_with_r0_unchanged(slot: int) -> None:
    build = tail_runtime({"p": "mov %r6, %r1\nmov %r0, 99\n" + call(slot) + "exit", "q": "mov %r0, 1\nexit"},
                         [(0, "q")])
    outcome = differential(build, "p", packet=frame())
    assert (outcome[1], outcome[5], outcome[6]) == (99, 0, "p")


def test_tail_call_target_gets_a_fresh_stack_the_context_and_the_registers() -> None:
    build = tail_runtime({
        "a": "mov %r6, %r1\nmov %r9, 9\nstdw [%r10-8], 0x1234\n" + call(0) + "mov %r0, 1\nexit",
        "b": "ldxdw %r0, [%r10-8]\nldxw %r2, [%r1+4]\nldxw %r3, [%r1+0]\nsub %r2, %r3\nadd %r0, %r2\n"
             "add %r0, %r9\nexit",
    }, [(0, "b")])
    assert differential(build, "a", packet=frame(77))[1] == 77 + 9


def test_tail_call_from_a_subprogram_returns_to_its_caller() -> None:
    build = tail_runtime(SUBPROGRAM_TAIL_CALL, [(0, "b")])
    outcome = differential(build, "a", packet=frame())
    assert (outcome[1], outcome[6]) == (1005, "a")


@pytest.mark.parametrize("budget", [4, 5, 10, 40])  # not inside b's block: budget stops are block-granular
def test_tail_call_budget_and_faults_in_the_target(budget: int) -> None:
    build = tail_runtime({"a": "mov %r6, %r1\n" + call(0) + "mov %r0, 1\nexit",
                          "b": "mov %r0, 3\nmov %r2, 0\nadd %r2, 1\nldxdw %r0, [%r2+0]\nexit"}, [(0, "b")])
    outcome = differential(build, "a", packet=frame(), budget=budget)
    assert outcome[0] == "fault"


def callx(slot: int) -> str:
    """``call(slot)`` with the helper id in a register, read from memory (not a
    constant the lowering could see): callx may name any helper."""
    return call(slot).replace("call bpf_tail_call", "stdw [%r10-16], 12\nldxdw %r9, [%r10-16]\ncallx %r9")


@pytest.mark.parametrize("slot,r0,tail_calls,program", [(1, 42, 1, "b"), (3, 7, 0, "a")])
def test_callx_of_bpf_tail_call_runs_natively(slot: int, r0: int, tail_calls: int, program: str) -> None:
    # b starts from a's registers (r8), as after a tail call by constant id.
    build = tail_runtime({"a": "mov %r6, %r1\nmov %r0, 7\nmov %r8, 42\n" + callx(slot) + "exit",
                          "b": "mov %r0, %r8\nexit"}, [(1, "b")])
    outcome = differential(build, "a", packet=frame())
    assert (outcome[1], outcome[5], outcome[6]) == (r0, tail_calls, program)


def test_tail_call_inside_a_callback_is_refused() -> None:
    text = """
        mov %r1, 1
        lddw %r2, func cb
        mov %r3, 0
        mov %r4, 0
        call bpf_loop
        exit
    cb:
        lddw %r2, map_fd 0
        mov %r3, 0
        call bpf_tail_call
        mov %r0, 0
        exit
    """
    outcome = differential(lambda: Runtime([typed(text, "xdp", name="p", maps=(prog_array("jt", 1),))]), "p",
                           packet=frame())
    assert outcome[1] == "HelperUnavailable"


# -- bpf_loop -----------------------------------------------------------------------------------------

def loop_runtime(count: int, stop: int = -1, flags: int = 0):  # type: ignore[no-untyped-def]
    text = LOOP.format(count=count, stop=stop, flags=flags).replace("    exit\ncb:", "    mov %r0, %r7\n    exit\ncb:")
    return lambda: Runtime([typed(text, "xdp", name="p")])


@pytest.mark.parametrize("count,stop,flags,r0", [
    (10, -1, 0, 45), (10, 3, 0, 6), (0, -1, 0, 0), (1, 0, 0, 0),
    ((1 << 23) + 1, -1, 0, 0), (-1, -1, 0, 0), (3, -1, 1, 0)])
def test_bpf_loop(count: int, stop: int, flags: int, r0: int) -> None:
    outcome = differential(loop_runtime(count, stop, flags), "p", packet=frame())
    assert outcome[:2] == ("ok", r0)


def test_callx_of_bpf_loop_runs_natively() -> None:
    text = LOOP.format(count=10, stop=-1, flags=0).replace("call bpf_loop", "stdw [%r10-16], 181\n    ldxdw %r9, [%r10-16]\n    callx %r9")
    text = text.replace("    exit\ncb:", "    mov %r0, %r7\n    exit\ncb:")
    outcome = differential(lambda: Runtime([typed(text, "xdp", name="p")]), "p", packet=frame())
    assert outcome[:2] == ("ok", 45)


def test_bpf_loop_shares_the_budget() -> None:
    outcome = differential(loop_runtime(1 << 23), "p", packet=frame(), budget=10_000, runs=1)
    assert outcome[1] == "BudgetExhausted" and outcome[4] == 10_000
    for budget in range(60, 90):
        differential(loop_runtime(10), "p", packet=frame(), budget=budget, runs=1)


def test_nested_bpf_loop_and_callback_faults() -> None:
    text = """
        stdw [%r10-8], 0
        mov %r1, 3
        lddw %r2, func outer
        mov %r3, %r10
        add %r3, -8
        mov %r4, 0
        mov %r9, 5
        call bpf_loop
        ldxdw %r0, [%r10-8]
        add %r0, %r9
        exit
    outer:
        mov %r3, %r2
        mov %r1, 4
        lddw %r2, func inner
        mov %r4, 0
        call bpf_loop
        mov %r0, 0
        exit
    inner:
        ldxdw %r3, [%r2+0]
        add %r3, 1
        stxdw [%r2+0], %r3
        jlt %r3, LIMIT, +1
        ldxdw %r0, [%r3+0]
        mov %r0, 0
        exit
    """
    ok = differential(lambda: Runtime([typed(text.replace("LIMIT", "100"), "xdp", name="p")]), "p", packet=frame())
    assert ok[1] == 12 + 5
    fault = differential(lambda: Runtime([typed(text.replace("LIMIT", "7"), "xdp", name="p")]), "p", packet=frame())
    assert fault[:2] == ("fault", "MemoryFault")


def test_recursive_callbacks_hit_the_frame_limit() -> None:
    text = """
        mov %r1, 1
        lddw %r2, func cb
        mov %r3, 0
        mov %r4, 0
        call bpf_loop
        exit
    cb:
        mov %r1, 1
        lddw %r2, func cb
        mov %r3, 0
        mov %r4, 0
        call bpf_loop
        exit
    """
    outcome = differential(lambda: Runtime([typed(text, "xdp", name="p")]), "p", packet=frame())
    assert outcome[1] == "CallDepthExceeded"


# -- bpf_for_each_map_elem ---------------------------------------------------------------------------

@pytest.mark.parametrize("definition,entries,stop,flags", [
    (array("a", 4), {0: 1, 1: 2, 2: 3, 3: 4}, -1, 0),
    (array("a", 4), {0: 1, 1: 2, 2: 3, 3: 4}, 1, 0),
    (hash_map("a"), {7: 10, 9: 20, 11: 30}, -1, 0),
    (hash_map("a"), {7: 10, 9: 20, 11: 30}, 9, 0),
    (hash_map("a"), {}, -1, 0),
    (array("a", 2), {}, -1, 1),
])
def test_for_each_map_elem(definition, entries, stop, flags) -> None:  # type: ignore[no-untyped-def]
    text = FOR_EACH.format(stop=stop, flags=flags)

    def setup(runtime: Runtime) -> None:
        for key, value in entries.items():
            runtime.maps["a"].update(u32(key), u64(value))

    outcome = differential(lambda: Runtime([typed(text, "xdp", name="p", maps=(definition,))]), "p", setup,
                           packet=frame())
    assert outcome[0] == "ok"


def test_for_each_key_is_read_only() -> None:
    text = FOR_EACH.format(stop=-1, flags=0).replace("ldxw %r6, [%r2+0]", "stw [%r2+0], 1")
    outcome = differential(lambda: Runtime([typed(text, "xdp", name="p", maps=(array("a", 2),))]), "p",
                           packet=frame())
    assert outcome[:2] == ("fault", "MemoryFault")


@pytest.mark.parametrize("limit", [100, 2])
def test_tail_call_target_with_callbacks_from_a_subprogram(limit: int) -> None:
    """a's subprogram tail-calls b, whose bpf_loop callback faults past ``limit``
    calls (the fault names b, as the interpreter's does), else b's r0 comes back to a."""
    build = tail_runtime({
        "a": "mov %r6, %r1\nmov %r7, 1000\ncall local sub\nadd %r0, %r7\nexit\nsub:\n" + call(0)
             + "mov %r0, 1\nexit",
        "b": f"""
            stdw [%r10-8], 0
            mov %r1, 5
            lddw %r2, func cb
            mov %r3, %r10
            add %r3, -8
            mov %r4, 0
            call bpf_loop
            ldxdw %r0, [%r10-8]
            exit
        cb:
            ldxdw %r3, [%r2+0]
            add %r3, 1
            stxdw [%r2+0], %r3
            jlt %r3, {limit}, +1
            ldxdw %r0, [%r3+0]
            mov %r0, 0
            exit
        """,
    }, [(0, "b")])
    outcome = differential(build, "a", packet=frame())
    assert outcome[:2] == (("ok", 1005) if limit == 100 else ("fault", "MemoryFault"))
    if limit != 100:
        assert outcome[5] == "b"
