"""The JIT's in-memory cache: a program met again with the same inputs is
neither lowered nor compiled again, and every input the lowering reads (mode,
opt level, resolved pseudo values, which helpers exist) selects its own code."""

from __future__ import annotations

import pytest

pytest.importorskip("llvmlite")

from ebpfvm.jit import compile, engine
from ebpfvm.jit import runtime as jit_runtime
from ebpfvm.jit.runtime import JitProgram

from ebpfvm.errors import UnknownHelper
from ebpfvm.helpers.registry import HelperRegistry
from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp
from ebpfvm.isa.load_store import LddwSource
from ebpfvm.program import Program


@pytest.fixture
def lowerings(monkeypatch: pytest.MonkeyPatch) -> list[Program]:
    """The programs lowered from here on (the cache starts empty)."""
    engine.clear_cache()
    lowered: list[Program] = []
    real = jit_runtime.lower_program

    def counting(program: Program, **options: object):  # type: ignore[no-untyped-def]
        lowered.append(program)
        return real(program, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(jit_runtime, "lower_program", counting)
    yield lowered
    engine.clear_cache()


PROGRAM = Program([b.mov64_imm(0, 41), b.alu64_imm(AluOp.ADD, 0, 1), b.exit_insn()])


def test_a_hit_skips_lowering_and_compiling(lowerings: list[Program]) -> None:
    first = compile(PROGRAM)
    again = compile(Program(list(PROGRAM)))
    assert again.compiled is first.compiled
    assert again.run(b"").r0 == 42
    assert len(lowerings) == 1


def test_mode_and_opt_level_are_part_of_the_key(lowerings: list[Program]) -> None:
    compile(PROGRAM, mode="checked")
    compile(PROGRAM, mode="trusted")
    compile(PROGRAM, mode="trusted", opt_level=1)
    compile(PROGRAM, mode="trusted")
    assert len(lowerings) == 3


def test_resolved_pseudo_values_are_part_of_the_key(lowerings: list[Program]) -> None:
    """The same bytes with another map behind ``lddw map_fd`` is other code."""
    program = Program([*b.lddw(0, 7, LddwSource.MAP_FD), b.exit_insn()])
    for address in (0x1000, 0x2000, 0x1000):
        jit = JitProgram(program, resolve_pseudo=lambda pc, head, tail, address=address: address)
        assert jit.run(b"").r0 == address
    assert len(lowerings) == 2


def test_which_helpers_exist_is_part_of_the_key(lowerings: list[Program]) -> None:
    program = Program([b.call_helper(1000), b.exit_insn()])
    empty, answering = HelperRegistry(), HelperRegistry()
    answering.register(1000, lambda machine, *args: 7)
    with pytest.raises(UnknownHelper):
        compile(program, helpers=empty).run(b"")
    assert compile(program, helpers=answering).run(b"").r0 == 7
    assert len(lowerings) == 2
