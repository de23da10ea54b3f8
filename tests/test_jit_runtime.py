"""Real programs on the JIT through the runtime (``Runtime.run(engine="jit")``):
every row of ``EXAMPLE_RUNS`` gives the interpreter's r0, packet, context and
maps; programs the JIT leaves to the interpreter say why."""

from __future__ import annotations

import pytest

pytest.importorskip("llvmlite")

from ebpfvm.errors import ProgramFault
from ebpfvm.runtime import Runtime

from example_runs import EXAMPLE_RUNS, ExampleRun, example_runtime


def _map_state(runtime: Runtime) -> dict[str, object]:
    state = {}
    for name, bpf_map in runtime.maps.items():
        storage = getattr(bpf_map, "storage", None)
        if storage is not None:
            state[name] = bytes(storage)
    return state


@pytest.mark.parametrize("case", EXAMPLE_RUNS, ids=lambda case: case.id)
def test_example_runs_on_the_jit(case: ExampleRun) -> None:
    interp, jit = example_runtime(case), example_runtime(case)
    want = interp.run(case.program, packet=case.packet)
    got = jit.run(case.program, packet=case.packet, engine="jit")
    if jit.last_engine != "jit":
        # The run still happened (on the interpreter) and must agree.
        assert jit.fallback_reason
    assert got.r0 == want.r0 == case.retval
    assert got.packet == want.packet
    assert got.ctx == want.ctx
    assert got.executed == want.executed
    assert got.trace == want.trace
    assert got.ringbuf_events == want.ringbuf_events
    assert got.redirect == want.redirect
    assert _map_state(jit) == _map_state(interp)
    for name, entries in case.maps.items():
        for key, value in entries.items():
            assert jit.maps[name].lookup(key) == value, (name, key)
    # A second run sees the maps the first left (storage persists, table re-pointed).
    again_i = interp.run(case.program, packet=case.packet)
    again_j = jit.run(case.program, packet=case.packet, engine="jit")
    assert again_j.r0 == again_i.r0 and _map_state(jit) == _map_state(interp)


def test_which_examples_run_natively() -> None:
    native, fallback = set(), {}
    for case in EXAMPLE_RUNS:
        runtime = example_runtime(case)
        runtime.run(case.program, packet=case.packet, engine="jit")
        if runtime.last_engine == "jit":
            native.add(case.obj)
        else:
            fallback[case.obj] = runtime.fallback_reason
    assert native, "no example ran on the JIT"
    # Tail calls and bpf_loop / for_each callbacks run natively too: nothing falls back.
    assert not fallback, fallback


def test_every_example_run_is_native() -> None:
    for case in EXAMPLE_RUNS:
        runtime = example_runtime(case)
        result = runtime.run(case.program, packet=case.packet, engine="jit")
        assert runtime.last_engine == "jit", (case.id, runtime.fallback_reason)
        assert result.r0 == case.retval


# -- hand-written programs: same result or the same fault on both engines -------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from runtime_support import array, frame, hash_map, typed  # noqa: E402


def _outcome(runtime: Runtime, program, engine: str, **kw):  # type: ignore[no-untyped-def]
    try:
        result = runtime.run(program, engine=engine, **kw)
    except ProgramFault as fault:
        return ("fault", type(fault).__name__, str(fault), getattr(fault, "pc", None),
                getattr(fault, "executed", None))
    return ("ok", result.r0, result.packet, result.ctx, result.executed, result.trace)


def differential(text: str, prog_type: str | None, maps=(), **kw):  # type: ignore[no-untyped-def]
    outcomes, states = [], []
    for engine in ("interp", "jit"):
        program = typed(text, prog_type, maps=maps)
        runtime = Runtime([program])
        outcomes.append(_outcome(runtime, program, engine, **kw))
        outcomes.append(_outcome(runtime, program, engine, **kw))  # maps persist
        states.append(_map_state(runtime))
        assert runtime.last_engine == engine, runtime.fallback_reason
    assert outcomes[2:] == outcomes[:2]
    assert states[1] == states[0]
    return outcomes[0]


CASES = {
    "ctx-field-rewrite": ("ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r0, %r3\nsub %r0, %r2\nexit", "xdp"),
    "packet-write": ("ldxw %r2, [%r1+0]\nstw [%r2+0], 0x04030201\nmov %r0, 3\nexit", "xdp"),
    "packet-past-end": ("ldxw %r2, [%r1+0]\nldxb %r0, [%r2+60]\nexit", "xdp"),
    "packet-headroom": ("ldxw %r2, [%r1+0]\nldxb %r0, [%r2-1]\nexit", "xdp"),
    "ctx-bad-field": ("mov %r0, 0\nldxdw %r0, [%r1+20]\nexit", "xdp"),
    "ctx-write": ("stw [%r1+12], 5\nmov %r0, 2\nexit", "xdp"),
    "stack-overrun": ("mov %r0, 0\nldxdw %r0, [%r10-520]\nexit", "xdp"),
    "value-store-load": ("lddw %r1, map_value 0, 8\nstdw [%r1+0], 7\nldxdw %r0, [%r1+0]\nexit", "xdp"),
    "value-past-end": ("lddw %r1, map_value 0, 0\nldxdw %r0, [%r1+32]\nexit", "xdp"),
    "value-atomic": ("lddw %r1, map_value 0, 0\nmov %r2, 5\nlock add [%r1], %r2\n"
                     "mov %r2, 9\nlock fetch add [%r1], %r2\nmov %r3, 1\nmov %r0, 14\nlock cmpxchg [%r1], %r3\n"
                     "lock fetch or32 [%r1+8], %r3\nldxdw %r0, [%r1+0]\nadd %r0, %r2\nexit", "xdp"),
    "ctx-atomic": ("mov %r2, 1\nlock add [%r1], %r2\nexit", "xdp"),
    "packet-atomic": ("ldxw %r2, [%r1+0]\nmov %r3, 7\nlock fetch xor [%r2+8], %r3\nmov %r0, %r3\nexit", "xdp"),
    "handle": ("lddw %r0, map_fd 0\nexit", "xdp"),
    "callx-lookup": ("stw [%r10-4], 1\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\nstdw [%r10-16], 1\n"
                     "ldxdw %r7, [%r10-16]\ncallx %r7\njeq %r0, 0, +2\nstdw [%r0+0], 5\nldxdw %r0, [%r0+0]\nexit", "xdp"),
    "callx-unknown": ("mov %r7, 99999\ncallx %r7\nexit", "xdp"),
    "plain-ctx": ("ldxb %r0, [%r1+3]\nstb [%r1+0], 9\nexit", None),
    "plain-ctx-past-end": ("ldxb %r0, [%r1+64]\nexit", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_result_or_fault(name: str) -> None:
    text, prog_type = CASES[name]
    outcome = differential(text, prog_type, maps=(array("a", 4),), packet=frame(60))
    assert outcome[0] in ("ok", "fault")


def _lookup(map_index: int, key: int) -> str:
    return f"""
        stw [%r10-4], {key}
        lddw %r1, map_fd {map_index}
        mov %r2, %r10
        add %r2, -4
        call 1
    """


@st.composite
def map_programs(draw):  # type: ignore[no-untyped-def]
    """Straight-line programs of array/hash lookups, updates, deletes and value
    arithmetic (keys partly out of range; null lookups skip their access)."""
    lines = ["mov %r6, 0"]
    for n in range(draw(st.integers(1, 6))):
        m = draw(st.integers(0, 1))
        key = draw(st.integers(0, 5))
        op = draw(st.sampled_from(["add", "update", "delete", "read"]))
        value = draw(st.integers(0, 2**31 - 1))
        if op == "update":
            lines += [f"stw [%r10-4], {key}", f"stdw [%r10-16], {value}", f"lddw %r1, map_fd {m}",
                      "mov %r2, %r10", "add %r2, -4", "mov %r3, %r10", "add %r3, -16", "mov %r4, 0", "call 2",
                      "add %r6, %r0"]
        elif op == "delete":
            lines += [f"stw [%r10-4], {key}", f"lddw %r1, map_fd {m}", "mov %r2, %r10", "add %r2, -4", "call 3",
                      "add %r6, %r0"]
        else:
            lines += [_lookup(m, key), f"jeq %r0, 0, +{4 if op == 'add' else 2}"]
            if op == "add":
                lines += ["ldxdw %r1, [%r0+0]", f"add %r1, {value}", "stxdw [%r0+0], %r1", "add %r6, %r1"]
            else:
                lines += ["ldxdw %r1, [%r0+0]", "add %r6, %r1"]
    lines += ["mov %r0, %r6", "exit"]
    return "\n".join(lines)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(map_programs())
def test_map_programs_differential(text: str) -> None:
    differential(text, "xdp", maps=(array("a", 4), hash_map("h", 3)), packet=frame(60))


# -- the command line: ebpfvm run OBJ.o --engine jit ----------------------------------------------

@pytest.mark.parametrize("run_id", ["firewall-pass", "rewrite-match", "tail-ipv4"])
def test_cli_run_object_on_the_jit(tmp_path, run_id: str) -> None:  # type: ignore[no-untyped-def]
    from test_cli import cli

    run = next(r for r in EXAMPLE_RUNS if r.id == run_id)
    packet = tmp_path / "p.bin"
    packet.write_bytes(run.packet)
    args = ("run", run.path, "--packet", packet, "--program", run.program)
    status_i, out_i, _ = cli(*args)
    status_j, out_j, _ = cli(*args, "--engine", "jit")
    assert status_i == status_j == 0
    notes = [line for line in out_j.splitlines() if line.startswith("note: ran on the interpreter")]
    assert [line for line in out_j.splitlines() if line not in notes] == out_i.splitlines()
    assert not notes  # tail calls run natively too


def test_array_lookup_is_inlined_and_agrees() -> None:
    text = """
        stw [%r10-4], 2
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, +2
        stdw [%r0+0], 42
        ldxdw %r0, [%r0+0]
        exit
    """
    outcome = differential(text, "xdp", maps=(array("a", 4),), packet=frame(60))
    assert outcome[:2] == ("ok", 42)
    program = typed(text, "xdp", maps=(array("a", 4),))
    runtime = Runtime([program])
    runtime.run(program, packet=frame(60), engine="jit")
    assert runtime._jits[id(program)][0].inlined_lookups == 1
    # A key in the context (slow path: the helper itself runs) and an out-of-range key.
    assert differential(text.replace("mov %r2, %r10\n        add %r2, -4", "mov %r2, %r1"), "xdp",
                        maps=(array("a", 4),), packet=frame(60))[0] in ("ok", "fault")
    assert differential(text.replace("stw [%r10-4], 2", "stw [%r10-4], 4"), "xdp",
                        maps=(array("a", 4),), packet=frame(60))[:2] == ("ok", 0)
