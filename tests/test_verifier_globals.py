"""Global functions (``verifier/globals.py``): a call is checked against the
BTF prototype only, and each called global function is verified once on its
own. The fixture ``fixtures/global_funcs.c`` has one socket filter per case.
Every verdict and error line below is the 6.18 kernel's; with the kernel
here, the verdicts, the instruction counts and the level-1 logs are compared
live too."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_support import comparable_log, object_kernel_log, require_kernel

from ebpfvm.elf import load_object
from ebpfvm.program import FunctionParam
from ebpfvm.verifier import verify

FIXTURE = Path(__file__).parent / "fixtures" / "global_funcs.o"

# program -> (verdict, the kernel's error line)
EXPECTED = {
    "ctx_arg": ("accept", None),
    "maybe_null_arg": ("reject", "R1 invalid mem access 'mem_or_null'"),
    "null_checked_arg": ("accept", None),
    "bounded_by_caller": ("reject", "value -2147483648 makes fp pointer be out of bounds"),
    "masked_index": ("reject", "R3 bitwise operator |= on pointer prohibited"),
    "pointer_as_scalar": ("reject", "Caller passes invalid args into func#1 ('identity')"),
    "nested_globals": ("accept", None),
    "void_global": ("reject", "Caller passes invalid args into func#1 ('touch')"),
    "opaque_pointer": ("reject", "Caller passes invalid args into func#1 ('is_set')"),
}


@pytest.fixture(scope="module")
def obj():  # type: ignore[no-untyped-def]
    return load_object(str(FIXTURE))


def test_the_loader_reads_linkage_and_prototypes(obj) -> None:  # type: ignore[no-untyped-def]
    functions = {f.name: f for f in obj.program("nested_globals").functions}
    assert functions["nested_globals"].insn == 0 and functions["nested_globals"].is_global
    assert functions["nested_globals"].params == (FunctionParam("pointer", "STRUCT __sk_buff", 192),)
    assert functions["outer"].is_global and functions["outer"].params == (FunctionParam("scalar"),)
    assert functions["inner"].insn > functions["outer"].insn > 0
    maybe_null = {f.name: f for f in obj.program("maybe_null_arg").functions}["first_byte"]
    assert maybe_null.params == (FunctionParam("pointer", "INT unsigned char", 1),)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdicts_and_error_lines(obj, name: str) -> None:  # type: ignore[no-untyped-def]
    verdict, line = EXPECTED[name]
    result = verify(obj.program(name))
    assert result.verdict == verdict
    assert (result.error.message if result.error else None) == line


def test_a_global_function_is_verified_for_any_argument(obj) -> None:  # type: ignore[no-untyped-def]
    """``pick(3)`` is safe for 3, but pick is verified for any int: refused,
    with the log saying which function was being validated."""
    result = verify(obj.program("bounded_by_caller"), log_level=2)
    assert "Func#1 ('pick') is global and assumed valid.\n" in result.log
    # level 1: main's trace is reset once main is verified; pick's failing path follows
    log = verify(obj.program("bounded_by_caller"), log_level=1).log
    assert log.startswith("Validating pick() func#1...\n3: R1=scalar() R10=fp0\n")
    assert log.index("Validating") < log.index("value -2147483648")


def test_level_one_log_of_success_keeps_only_the_last_safe_line(obj) -> None:  # type: ignore[no-untyped-def]
    """As the kernel: each verified function resets the level-1 log."""
    log = verify(obj.program("nested_globals"), log_level=1).log
    assert log.splitlines()[0] == "Func#2 ('inner') is safe for any args that match its prototype"
    assert "outer" not in log


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_matches_the_kernel(obj, name: str) -> None:  # type: ignore[no-untyped-def]
    require_kernel()
    kernel = object_kernel_log(obj, name, 1)
    ours = verify(obj.program(name), log_level=1)
    assert comparable_log(ours.log) == comparable_log(kernel)
    assert ours.verdict == EXPECTED[name][0]


def _with_functions(program, *functions):  # type: ignore[no-untyped-def]
    from ebpfvm.program import Program
    return Program(program.instructions, prog_type="socket_filter", functions=functions)


def test_prototypes_the_kernel_cannot_use_are_refused_at_the_call() -> None:
    """btf_prepare_func_args' refusals (hand-made prototypes: clang does not
    emit these; void and unsizable ones are in the fixture), then ``Caller passes invalid args``."""
    from ebpfvm import assemble
    from ebpfvm.program import FunctionInfo
    program = assemble("mov %r1, 1\ncall local f\nexit\nf:\nmov %r0, 0\nexit")
    main = FunctionInfo(0, "main", True, (FunctionParam("pointer", "STRUCT __sk_buff", 192),))
    for params, returns, line in [
        ((FunctionParam("scalar"),) * 6, True, "Global function f() with 6 > 5 args. Buggy compiler."),
        ((FunctionParam("other", "STRUCT pair"),), True, "Arg#0 type STRUCT in f() is not supported yet."),
    ]:
        result = verify(_with_functions(program, main, FunctionInfo(3, "f", True, params, returns)), log_level=1)
        assert result.error.message == "Caller passes invalid args into func#1 ('f')"
        assert f"{line}\nCaller passes invalid args into func#1 ('f')\n" in result.log


def test_an_unsizable_pointer_is_named_as_the_kernel_names_it(obj) -> None:  # type: ignore[no-untyped-def]
    log = verify(obj.program("opaque_pointer"), log_level=1).log
    assert ("arg#0 reference type('FWD opaque') size cannot be determined: -22\n"
            "Caller passes invalid args into func#1 ('is_set')\n") in log
