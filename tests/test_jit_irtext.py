"""The JIT's text builder (``jit/irtext.py``) writes byte for byte the module
text llvmlite.ir prints for the same lowering (``builder="llvmlite"``), on
generated programs, both conformance suites, and the runtime's example
objects (maps, contexts, tail calls, callbacks, inlined lookups)."""

from __future__ import annotations

import difflib

import pytest

pytest.importorskip("llvmlite")

from ebpfvm.conformance import CASES_DIR, load_case
from ebpfvm.conformance.runner import build_program
from ebpfvm.conformance.strategies import kernel_safe_programs
from ebpfvm.jit import irtext
from ebpfvm.jit import runtime as jit_runtime
from ebpfvm.jit.lowering import lower_program
from example_runs import EXAMPLE_RUNS, example_runtime
from fuzz_budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir
from shared_suite import needs_shared_suite, suite_files


from ebpfvm.helpers.defaults import shared_default_registry
from ebpfvm.program import Program


def assert_same_text(program: Program, **options: object) -> None:
    options.setdefault("helpers", shared_default_registry())
    text = str(lower_program(program, builder="text", **options).module)  # type: ignore[arg-type]
    reference = str(lower_program(program, builder="llvmlite", **options).module)  # type: ignore[arg-type]
    if text != reference:
        diff = difflib.unified_diff(reference.splitlines(), text.splitlines(), "llvmlite.ir", "irtext", lineterm="")
        pytest.fail("\n".join(list(diff)[:40]))


def _programs(paths: list) -> list[Program]:
    built = [build_program(load_case(path)) for path in paths]
    return [program for program in built if isinstance(program, Program)]


@settings(max_examples=examples(150), deadline=None)
@given(program=kernel_safe_programs(), checked=st.booleans())
def test_generated_programs_print_the_same(program: Program, checked: bool) -> None:
    assert_same_text(program, checked=checked)


@pytest.mark.parametrize("checked", [True, False], ids=["checked", "trusted"])
def test_own_corpus_prints_the_same(checked: bool) -> None:
    programs = _programs(sorted(CASES_DIR.glob("*.data")))
    assert len(programs) > 150
    for program in programs:
        assert_same_text(program, checked=checked)


@needs_shared_suite
@pytest.mark.parametrize("checked", [True, False], ids=["checked", "trusted"])
def test_shared_suite_prints_the_same(checked: bool) -> None:
    programs = _programs(suite_files("tests"))
    assert len(programs) > 250
    for program in programs:
        assert_same_text(program, checked=checked)


def test_runtime_examples_print_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runtime mode (slow paths, helpers handing registers over, inlined array
    lookups): every program the example runs compile, lowered both ways."""
    compared = []

    def both(program: Program, **options: object):  # type: ignore[no-untyped-def]
        assert_same_text(program, **options)
        compared.append(program)
        return lower_program(program, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(jit_runtime, "lower_program", both)
    for case in EXAMPLE_RUNS:
        example_runtime(case).run(case.program, packet=case.packet, engine="jit")
    assert len({program.to_bytes() for program in compared}) >= 8


def test_text_builder_refuses_a_second_terminator() -> None:
    module = ir.Module()
    fn = irtext.TextFunction(module, ir.FunctionType(ir.IntType(64), []), "f")
    builder = irtext.builder_for(fn.append_basic_block("entry"))
    builder.ret(ir.Constant(ir.IntType(64), 0))
    with pytest.raises(ValueError, match="entry is already terminated"):
        builder.ret(ir.Constant(ir.IntType(64), 1))
    with pytest.raises(ValueError, match="entry is terminated"):
        with builder.goto_block(builder.block):
            pass
    assert str(module).endswith('define i64 @"f"()\n{\nentry:\n  ret i64 0\n}\n')
