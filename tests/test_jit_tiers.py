"""JIT optimisation tiers (``ebpfvm.jit.engine.choose_tier``) and the SSA
register lowering: programs compiled by the light tier (cheap passes, fast
code generation) behave exactly like the interpreter, and control flow that
stresses the phi construction (loop headers, the entry as a loop header,
both branch targets equal, callees) gives the interpreter's results."""

from __future__ import annotations

import pytest
from ebpfvm.jit import compile, engine

import ebpfvm
from benchmarks.jit_speed import synthetic
from benchmarks.programs import COMPARE_WORKLOADS
from ebpfvm.errors import ProgramFault
from ebpfvm.interp import build as b
from ebpfvm.interp import run
from ebpfvm.isa import AluOp, JmpOp
from ebpfvm.program import Program


def _outcome(thunk):
    try:
        result = thunk()
    except ProgramFault as fault:
        return type(fault).__name__, str(fault), getattr(fault, "executed", None)
    return "ok", result.r0, result.mem, getattr(result, "executed", None)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Tests here force tiers and count disk hits: no compiled program may
    come from, or stay in, the in-memory cache (its keys do not name the tier)."""
    engine.clear_cache()
    yield
    engine.clear_cache()


FORCED = {"light": engine.LIGHT_TIER, "reduced": engine.Tier("reduced", engine.REDUCED_PASSES, 2)}


def _force(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Every module goes through tier ``name`` (clear the cache around this:
    its keys do not name the tier)."""
    engine.clear_cache()
    monkeypatch.setattr(engine, "choose_tier", lambda *args, **kwargs: FORCED[name])


def test_tier_choice() -> None:
    small, large = engine.FULL_TIER_IR, engine.FULL_TIER_IR + 1
    assert engine.choose_tier(small, 2).name == "full"
    assert engine.choose_tier(small, 2).codegen_level == 2
    assert engine.choose_tier(large, 2).name == "light"
    assert engine.choose_tier(large, 2).codegen_level == 0
    assert engine.choose_tier(small, 2, light=True).name == "light"
    assert engine.choose_tier(large, 3).name == "full"  # opt level 3: full pipeline at any size
    assert engine.choose_tier(large, 1).name == "light"
    assert engine.choose_tier(small, 1).codegen_level == 1
    assert engine.choose_tier(small, 0).name == engine.choose_tier(large, 0).name == "none"
    # Programs that loop keep the full pipeline unless they are too long for it.
    assert engine.choose_tier(large, 2, loops=True).name == "full"
    assert engine.choose_tier(large, 2, light=True, loops=True).name == "reduced"
    assert engine.choose_tier(large, 2, light=True).name == "light"


def test_the_lowering_marks_programs_that_loop() -> None:
    looping = ebpfvm.assemble("mov %r0, 0\nadd %r0, 1\njlt %r0, 5, -2\nexit")
    straight = ebpfvm.assemble("mov %r0, 0\njeq %r1, 0, +1\nadd %r0, 1\nexit")
    assert compile(looping).compiled.tier.name == compile(straight).compiled.tier.name == "full"
    assert f"!{engine.LOOPS_METADATA} =" in compile(looping).llvm_ir
    assert engine.LOOPS_METADATA not in compile(straight).llvm_ir


def test_a_large_program_that_loops_keeps_the_full_tier() -> None:
    body = synthetic(800)  # loop-free, over FULL_TIER_IR instructions of IR
    looped = Program([b.mov64_imm(6, 0), b.alu64_imm(AluOp.ADD, 6, 1), b.jmp_imm(JmpOp.JLT, 6, 3, -2),
                      *body.instructions])
    assert compile(body).compiled.tier.name == "light"
    jit = compile(looped)
    assert jit.compiled.tier.name == "full"
    assert jit.run().r0 == run(looped).r0


CONTROL_FLOW = {
    # slot 0 is a loop header: its phis get the entry edge and the back edge
    "entry is a loop header": ("add %r0, 3\nmov %r2, %r0\nand %r2, 7\njlt %r0, 40, -4\nadd %r0, %r2\nexit", b""),
    "both targets equal": ("mov %r0, 5\njeq %r0, 5, +0\nadd %r0, 1\nexit", b""),
    "nested loops": (("mov %r0, 0\nmov %r3, 0\nouter:\nmov %r4, 0\ninner:\nadd %r0, %r4\nadd %r4, 1\n"
                     "jlt %r4, %r3, inner\nadd %r3, 1\njlt %r3, 9, outer\nexit"), b""),
    "registers differ at a join": (("ldxb %r2, [%r1+0]\nmov %r0, 1\njeq %r2, 0, +2\nmov %r0, 2\nmov %r3, 7\n"
                                   "add %r0, %r3\nexit"), b"\x01"),
    "loop over input memory": (("mov %r0, 0\nmov %r3, %r1\nadd %r3, 16\nloop:\nldxb %r4, [%r1+0]\nadd %r0, %r4\n"
                               "add %r1, 1\njlt %r1, %r3, loop\nexit"), bytes(range(1, 17))),
    "callee with a loop": (("mov %r1, 6\ncall local f\nadd %r0, 1\nexit\nf:\nmov %r0, 1\nloop:\nmul %r0, %r1\n"
                           "sub %r1, 1\njgt %r1, 1, loop\nexit"), b""),
    "fault in a loop": ("mov %r0, 0\nloop:\nldxb %r2, [%r1+0]\nadd %r1, 1\nadd %r0, 1\nja loop", bytes(5)),
}


@pytest.mark.parametrize("tier", ["full", "light", "reduced"])
@pytest.mark.parametrize("mode", ["checked", "trusted"])
@pytest.mark.parametrize("name", list(CONTROL_FLOW))
def test_control_flow_matches_the_interpreter(name: str, mode: str, tier: str, monkeypatch) -> None:
    source, mem = CONTROL_FLOW[name]
    program = ebpfvm.assemble(source)
    want = _outcome(lambda: run(program, mem=mem))
    if mode == "trusted" and want[0] != "ok":
        pytest.skip("trusted mode is only defined for programs that do not fault")
    engine.clear_cache()
    if tier != "full":
        _force(monkeypatch, tier)
    jit = compile(program, mode=mode)
    assert jit.compiled.tier.name == tier
    got = _outcome(lambda: jit.run(mem))
    engine.clear_cache()
    if mode == "trusted":
        want, got = want[:3], got[:3]  # trusted mode does not count instructions
    assert got == want


@pytest.mark.parametrize("tier", ["light", "reduced"])
@pytest.mark.parametrize("name", list(COMPARE_WORKLOADS))
@pytest.mark.parametrize("mode", ["checked", "trusted"])
def test_cheaper_tiers_compute_the_workloads(name: str, mode: str, tier: str, monkeypatch) -> None:
    w = COMPARE_WORKLOADS[name]()
    _force(monkeypatch, tier)
    jit = compile(w.program, mode=mode)
    assert jit.compiled.tier.name == tier
    assert jit.run(w.mem, budget=100_000_000).r0 == w.expected_r0
    engine.clear_cache()


def test_large_program_takes_the_light_tier_and_matches_the_interpreter() -> None:
    program = synthetic(1_500)
    want = run(program)
    for mode in ("checked", "trusted"):
        jit = compile(program, mode=mode)
        assert jit.compiled.tier.name == "light"
        assert jit.run().r0 == want.r0
    checked = compile(program)
    assert checked.run().executed == want.executed
    # The budget runs out mid-program: same fault, same count as the interpreter.
    short = want.executed // 2
    assert _outcome(lambda: checked.run(budget=short)) == _outcome(lambda: run(program, budget=short))


def test_texts_of_a_light_tier_program() -> None:
    jit = compile(synthetic(1_500), mode="trusted")
    assert jit.compiled.tier.name == "light"
    assert "define i64 @bpf_main" in jit.optimized_ir.replace('"', "")
    assert "bpf_main" in jit.assembly


def test_disk_cache_serves_object_code_across_processes(tmp_path, monkeypatch) -> None:
    import subprocess
    import sys
    from pathlib import Path

    monkeypatch.setenv(engine.CACHE_ENV, str(tmp_path))
    program = ebpfvm.assemble("mov %r0, 0\nldxb %r2, [%r1+0]\nadd %r0, %r2\nadd %r0, 40\nexit")
    engine.clear_cache()
    first = compile(program)
    assert not first.compiled.from_disk
    (stored,) = tmp_path.glob("*.o")
    engine.clear_cache()
    again = compile(program)
    assert again.compiled.from_disk
    assert again.run(b"\x02").r0 == 42
    assert "add" in again.optimized_ir  # the texts are rebuilt from the IR
    # Another process finds the object (the key holds nothing process-specific).
    root = Path(__file__).resolve().parents[1]
    script = ("import ebpfvm; from ebpfvm.jit import compile; "
              "j = compile(ebpfvm.assemble('mov %r0, 0\\nldxb %r2, [%r1+0]\\nadd %r0, %r2\\nadd %r0, 40\\nexit')); "
              "print(j.compiled.from_disk, j.run(b'\\x05').r0)")
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "45"]
    # A damaged file is ignored and rewritten, never loaded.
    data = stored.read_bytes()
    stored.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    engine.clear_cache()
    repaired = compile(program)
    assert not repaired.compiled.from_disk and repaired.run(b"\x01").r0 == 41
    engine.clear_cache()
    assert compile(program).compiled.from_disk
    engine.clear_cache()


def test_disk_cache_is_off_by_default(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(engine.CACHE_ENV, raising=False)
    assert engine.disk_cache_dir() is None
    monkeypatch.setenv(engine.CACHE_ENV, "0")
    assert engine.disk_cache_dir() is None
    monkeypatch.setenv(engine.CACHE_ENV, "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert engine.disk_cache_dir() == tmp_path / "ebpfvm" / "jit"
