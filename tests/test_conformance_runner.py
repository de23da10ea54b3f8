"""The conformance runner: verdicts, expected errors, asm/raw agreement, engines, the command."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.cli import main as cli_main
from ebpfvm.conformance import runner
from ebpfvm.conformance.dataformat import parse_case
from ebpfvm.conformance.runner import (Availability, CaseResult, Engine, EngineSkip, InterpreterEngine, Stage, Status,
                                       UnknownEngine, conformance_command, error_text_matches, expand_paths,
                                       resolve_engines, run_case, run_file, run_paths, summary_line)
from ebpfvm.errors import InputFileError, MemoryFault, UserInputError
from ebpfvm.program import Program


def case(text: str, name: str = "t"):
    return parse_case(text, f"cases/{name}.data")


# -- single engine verdicts ------------------------------------------------------

def test_passing_case() -> None:
    result = run_case(case("-- asm\nmov %r0, 1\nadd %r0, 2\nexit\n-- result\n0x3\n"))
    assert result.status is Status.PASS
    assert result.r0 == 3
    assert result.engine == "interp"
    assert result.line() == "PASS t"


def test_wrong_result_fails_with_both_values() -> None:
    result = run_case(case("-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n"))
    assert result.status is Status.FAIL
    assert result.r0 == 1
    assert result.reason == "expected 0x2, got 0x1"
    assert result.line() == "FAIL t: expected 0x2, got 0x1"


def test_result_is_compared_as_unsigned_64_bit() -> None:
    assert run_case(case("-- asm\nmov %r0, -1\nexit\n-- result\n0xffffffffffffffff\n")).status is Status.PASS
    assert run_case(case("-- asm\nmov %r0, -1\nexit\n-- result\n-1\n")).status is Status.PASS


def test_mem_is_passed_in_r1_with_length_in_r2() -> None:
    text = "-- asm\nldxb %r0, [%r1+2]\nadd %r0, %r2\nexit\n-- mem\n00 00 40\n-- result\n0x43\n"
    assert run_case(case(text)).status is Status.PASS


def test_expected_error_at_assembly() -> None:
    result = run_case(case("-- asm\nmov %r0, %r50\nexit\n-- error\ninvalid register\n"))
    assert result.status is Status.PASS
    assert result.stage is Stage.ASSEMBLE


def test_expected_error_text_is_case_insensitive_and_empty_matches_anything() -> None:
    assert run_case(case("-- asm\nmov %r0, %r50\nexit\n-- error\nINVALID   Register\n")).status is Status.PASS
    assert run_case(case("-- asm\nmov %r0, %r50\nexit\n-- error\n")).status is Status.PASS
    assert error_text_matches("", "anything")
    assert error_text_matches("Invalid  read", "insn 0: invalid\nread of 4 bytes")
    assert not error_text_matches("invalid write", "invalid read")


def test_expected_error_at_decoding() -> None:
    result = run_case(case("-- raw\nb7 10 00 00 01 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n"))
    assert result.status is Status.PASS
    assert result.stage is Stage.DECODE


def test_expected_error_at_run_time() -> None:
    result = run_case(case("-- asm\nldxw %r0, [%r1+2]\nexit\n-- mem\n00 01 02\n-- error\ninvalid read\n"))
    assert result.status is Status.PASS
    assert result.stage is Stage.RUN
    assert "invalid read" in result.reason


def test_expected_error_with_other_text_fails_and_says_what_happened() -> None:
    result = run_case(case("-- asm\nldxw %r0, [%r1+2]\nexit\n-- error\ndivision by zero\n"))
    assert result.status is Status.FAIL
    assert "expected an error containing 'division by zero'" in result.reason
    assert "run failed: insn 0: invalid read" in result.reason


def test_expected_error_but_program_returns() -> None:
    result = run_case(case("-- asm\nmov %r0, 5\nexit\n-- error\nsomething\n"))
    assert result.status is Status.FAIL
    assert result.reason == "expected an error containing 'something', got 0x5"
    empty = run_case(case("-- asm\nmov %r0, 5\nexit\n-- error\n"))
    assert empty.reason == "expected an error, got 0x5"


def test_assembly_error_when_a_result_is_expected_names_the_file_line() -> None:
    text = "# header\n# more\n-- asm\nmov %r0, 1\nbogus %r0\nexit\n-- result\n0x1\n"
    result = run_case(case(text))
    assert result.status is Status.FAIL
    assert result.stage is Stage.ASSEMBLE
    # "bogus" is line 2 of the asm text and line 5 of the file.
    assert "assemble failed: line 5:" in result.reason
    assert result.reason.startswith("expected 0x1, but ")


def test_runtime_fault_when_a_result_is_expected() -> None:
    result = run_case(case("-- asm\nldxdw %r0, [%r1+0]\nexit\n-- result\n0x1\n"))
    assert result.status is Status.FAIL
    assert result.stage is Stage.RUN
    assert "invalid read" in result.reason


# -- asm and raw together --------------------------------------------------------

def test_asm_and_raw_that_agree_pass() -> None:
    text = "-- asm\nmov %r0, 7\nexit\n-- raw\n0x00000007000000b7\n0x95\n-- result\n0x7\n"
    assert run_case(case(text)).status is Status.PASS


def test_asm_and_raw_mismatch_fails_naming_the_slot() -> None:
    text = "-- asm\nmov %r0, 7\nexit\n-- raw\n0x00000008000000b7\n0x95\n-- result\n0x7\n"
    result = run_case(case(text))
    assert result.status is Status.FAIL
    assert result.stage is Stage.MISMATCH
    assert "asm and raw disagree at slot 0" in result.reason
    assert "0x00000007000000b7" in result.reason and "0x00000008000000b7" in result.reason


def test_asm_and_raw_length_mismatch() -> None:
    text = "-- asm\nmov %r0, 7\nexit\n-- raw\n0x00000007000000b7\n0x95\n0x95\n-- result\n0x7\n"
    result = run_case(case(text))
    assert result.status is Status.FAIL
    assert "asm has 2 slots, raw 3" in result.reason


def test_mismatch_never_satisfies_an_expected_error() -> None:
    text = "-- asm\nmov %r0, 7\nexit\n-- raw\n0x00000008000000b7\n0x95\n-- error\n"
    assert run_case(case(text)).status is Status.FAIL


# -- engines ---------------------------------------------------------------------

class FixedEngine(Engine):
    """Returns a fixed r0, or raises what it was given."""

    def __init__(self, name: str, r0: int = 0, raises: BaseException | None = None, ok: bool = True,
                 ebpfvm_semantics: bool = True) -> None:
        self.name = name
        self.r0 = r0
        self.raises = raises
        self.ok = ok
        self.ebpfvm_semantics = ebpfvm_semantics
        self.runs = 0

    def available(self) -> Availability:
        return Availability(self.ok, "" if self.ok else f"{self.name} is switched off")

    def run(self, program: Program, mem: bytes) -> int:
        self.runs += 1
        if self.raises is not None:
            raise self.raises
        return self.r0


ONE = "-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n"


def test_engines_that_agree_pass() -> None:
    result = run_case(case(ONE), [InterpreterEngine(), FixedEngine("fake", 1)])
    assert result.status is Status.PASS
    assert result.engine == "interp,fake"
    assert result.r0 == 1


def test_engines_that_disagree_fail_printing_both() -> None:
    result = run_case(case(ONE), [InterpreterEngine(), FixedEngine("fake", 2)])
    assert result.status is Status.FAIL
    assert result.reason == "engines disagree: interp returned 0x1; fake returned 0x2 (expected 0x1)"
    assert result.r0 is None


def test_engines_that_agree_on_a_wrong_value() -> None:
    result = run_case(case("-- asm\nmov %r0, 1\nexit\n-- result\n0x9\n"), [InterpreterEngine(), FixedEngine("fake", 1)])
    assert result.status is Status.FAIL
    assert result.reason == "expected 0x9, got 0x1"


def test_engine_failure_versus_value_is_a_disagreement() -> None:
    fault = MemoryFault(3, 0x10, 4, False, None)
    result = run_case(case(ONE), [InterpreterEngine(), FixedEngine("fake", raises=fault)])
    assert result.status is Status.FAIL
    assert "engines disagree: interp returned 0x1; fake run failed: insn 3: invalid read" in result.reason


def test_unavailable_engines_are_left_out_or_skip() -> None:
    off = FixedEngine("off", 5, ok=False)
    result = run_case(case(ONE), [InterpreterEngine(), off])
    assert result.status is Status.PASS
    assert result.engine == "interp"
    assert off.runs == 0
    alone = run_case(case(ONE), off)
    assert alone.status is Status.SKIP
    assert "off is switched off" in alone.reason
    assert alone.line().startswith("SKIP t: no engine available")


def test_engine_skip_for_one_case() -> None:
    picky = FixedEngine("picky", raises=EngineSkip("no helpers here"))
    assert run_case(case(ONE), picky).line() == "SKIP t: no helpers here"
    both = run_case(case(ONE), [InterpreterEngine(), picky])
    assert both.status is Status.PASS and both.engine == "interp"


def test_interpreter_only_cases_skip_foreign_engines() -> None:
    text = "# interpreter-only: kernel rejects it\n" + ONE
    kernelish = FixedEngine("kernel", 99, ebpfvm_semantics=False)
    result = run_case(case(text), [InterpreterEngine(), kernelish])
    assert result.status is Status.PASS
    assert kernelish.runs == 0
    assert run_case(case(text), kernelish).line() == "SKIP t: interpreter-only case: kernel rejects it"


def test_foreign_engines_only_need_to_fail_for_an_expected_error() -> None:
    text = "-- asm\nldxw %r0, [%r1+2]\nexit\n-- error\ninvalid read\n"
    kernelish = FixedEngine("kernel", raises=UserInputError("verifier says: R1 invalid mem access"),
                            ebpfvm_semantics=False)
    assert run_case(case(text), [InterpreterEngine(), kernelish]).status is Status.PASS
    ours = FixedEngine("jit", raises=UserInputError("something else"))
    assert run_case(case(text), [InterpreterEngine(), ours]).status is Status.FAIL


def test_an_engine_crash_is_a_fail_not_a_traceback() -> None:
    result = run_case(case(ONE), FixedEngine("buggy", raises=ZeroDivisionError("oops")))
    assert result.status is Status.FAIL
    assert result.stage is Stage.INTERNAL
    assert "buggy crashed: ZeroDivisionError: oops" in result.reason
    expected_error = case("-- asm\nmov %r0, 1\nexit\n-- error\n")
    assert run_case(expected_error, FixedEngine("buggy", raises=ValueError("x"))).status is Status.FAIL


def test_engine_names_and_all(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [e.name for e in resolve_engines("interp")] == ["interp"]
    names = [e.name for e in resolve_engines("all")]
    assert names[0] == "interp" and {"kernel", "jit"} <= set(names)
    with pytest.raises(UnknownEngine, match="unknown engine 'nope'"):
        resolve_engines("nope")
    monkeypatch.setitem(runner._ENGINES, "fake", lambda: FixedEngine("fake", 2))
    result = run_case(case(ONE), "all")
    assert result.status is Status.FAIL
    assert "interp returned 0x1;" in result.reason and "fake returned 0x2" in result.reason


def test_placeholder_engines_report_why_they_are_missing() -> None:
    for name in ("kernel", "jit"):
        engine = resolve_engines(name)[0]
        if isinstance(engine, runner.PendingEngine):
            assert not engine.available()
            assert run_case(case(ONE), name).status is Status.SKIP


# -- files and the command -------------------------------------------------------

def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_expand_paths_sorts_directories_and_keeps_files(tmp_path: Path) -> None:
    write(tmp_path, "b.data", ONE)
    write(tmp_path, "a.data", ONE)
    write(tmp_path, "notes.txt", "x")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "c.data", ONE)  # not recursive
    explicit = write(tmp_path, "single.case", ONE)  # a named file is taken whatever its suffix
    files = expand_paths([tmp_path, explicit])
    assert [p.name for p in files] == ["a.data", "b.data", "single.case"]
    with pytest.raises(InputFileError, match="no such file"):
        expand_paths([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no .data files"):
        expand_paths([tmp_path / "empty"])


def test_malformed_file_is_a_fail_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.data", "-- asm\nexit\n-- wat\n")
    result = run_file(path)
    assert result.status is Status.FAIL
    assert result.stage is Stage.PARSE
    assert result.reason == f"{path}:3: unknown section '-- wat' (known: asm, raw, mem, result, error, " \
                            "no register offset, c)"


def test_run_paths_checks_paths_before_running(tmp_path: Path) -> None:
    write(tmp_path, "a.data", ONE)
    with pytest.raises(InputFileError):
        run_paths([tmp_path, tmp_path / "missing.data"])
    results = list(run_paths([tmp_path]))
    assert [r.status for r in results] == [Status.PASS]


def test_summary_line() -> None:
    p = CaseResult("a", Status.PASS)
    f = CaseResult("b", Status.FAIL, "why")
    s = CaseResult("c", Status.SKIP, "why")
    assert summary_line([p, p, f]) == "2 passed, 1 failed"
    assert summary_line([p, f, s]) == "1 passed, 1 failed, 1 skipped"
    assert summary_line([]) == "0 passed, 0 failed"


def test_conformance_command_output_and_status(tmp_path: Path) -> None:
    write(tmp_path, "a-good.data", ONE)
    out = io.StringIO()
    assert conformance_command([str(tmp_path)], "interp", out) == 0
    assert out.getvalue() == "PASS a-good\n1 passed, 0 failed\n"

    write(tmp_path, "b-bad.data", "-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n")
    write(tmp_path, "c-broken.data", "-- asm\nexit\n-- result\nzz\n")
    out = io.StringIO()
    assert conformance_command([str(tmp_path)], "interp", out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == "PASS a-good"
    assert lines[1] == "FAIL b-bad: expected 0x2, got 0x1"
    assert lines[2].startswith(f"FAIL c-broken: {tmp_path / 'c-broken.data'}:4: bad number 'zz'")
    assert lines[3] == "1 passed, 2 failed"


def test_conformance_command_counts_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "a.data", ONE)
    monkeypatch.setitem(runner._ENGINES, "off", lambda: FixedEngine("off", ok=False))
    out = io.StringIO()
    assert conformance_command([str(tmp_path)], "off", out) == 0
    assert out.getvalue().splitlines()[-1] == "0 passed, 0 failed, 1 skipped"


def test_conformance_command_all_notes_missing_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "a.data", ONE)
    monkeypatch.setitem(runner._ENGINES, "off", lambda: FixedEngine("off", ok=False))
    out = io.StringIO()
    assert conformance_command([str(tmp_path)], "all", out) == 0
    text = out.getvalue()
    assert "note: engine off left out: off is switched off\n" in text
    assert text.endswith("PASS a\n1 passed, 0 failed\n")


def test_conformance_command_bad_input_raises_user_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        conformance_command([str(tmp_path / "missing")], "interp", io.StringIO())
    write(tmp_path, "a.data", ONE)
    with pytest.raises(UnknownEngine):
        conformance_command([str(tmp_path)], "warp-drive", io.StringIO())


def test_cli_exit_statuses(tmp_path: Path) -> None:
    good = write(tmp_path, "good.data", ONE)
    bad = write(tmp_path, "bad.data", "-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n")
    out, err = io.StringIO(), io.StringIO()
    assert cli_main(["conformance", str(good), "--engine", "interp"], out=out, err=err) == 0
    assert out.getvalue().endswith("1 passed, 0 failed\n")
    assert cli_main(["conformance", str(good), str(bad)], out=io.StringIO(), err=io.StringIO()) == 1
    err = io.StringIO()
    assert cli_main(["conformance", str(tmp_path / "nope.data")], out=io.StringIO(), err=err) == 2
    assert len(err.getvalue().splitlines()) == 1
    assert "no such file or directory" in err.getvalue()
    err = io.StringIO()
    assert cli_main(["conformance", str(good), "--engine", "nope"], out=io.StringIO(), err=err) == 2
    assert len(err.getvalue().splitlines()) == 1


def test_register_engine_rejects_reserved_names() -> None:
    with pytest.raises(ValueError):
        runner.register_engine("all", lambda: FixedEngine("x"))
    with pytest.raises(ValueError):
        runner.register_engine("", lambda: FixedEngine("x"))


_ASM_LINES = st.sampled_from([
    "mov %r0, 1", "mov32 %r0, -1", "add %r0, %r1", "ldxb %r0, [%r1+0]", "ldxdw %r0, [%r10-8]",
    "stdw [%r10-8], 3", "div %r0, 0", "jeq %r0, 1, +1", "ja -1", "ja +5", "exit", "lock add [%r10-8], %r0",
    "lddw %r0, 0x123456789", "call 5", "call local f", "f:", "mov %r99, 1", "bogus", "# comment", "",
])


@settings(max_examples=150, deadline=None)
@given(asm=st.lists(_ASM_LINES, max_size=12), mem=st.binary(max_size=16),
       expect_error=st.booleans(), result=st.integers(0, 3))
def test_fuzz_run_case_never_raises(asm: list[str], mem: bytes, expect_error: bool, result: int) -> None:
    text = "-- asm\n" + "\n".join(asm) + "\n-- mem\n" + mem.hex(" ") + "\n"
    text += "-- error\n\n" if expect_error else f"-- result\n{result}\n"
    verdict = run_case(case(text), InterpreterEngine(budget=10_000))
    assert verdict.status in (Status.PASS, Status.FAIL)
    assert verdict.stage is not Stage.INTERNAL, verdict.reason
    assert "\n" not in verdict.line()
