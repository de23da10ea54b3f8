"""Run conformance cases on one or more engines and report ``PASS``/``FAIL``/``SKIP``.

An ``Engine`` turns a ``Program`` and input memory into r0. The interpreter
is the reference; the kernel and the JIT plug in through ``register_engine``.
With several engines (``--engine all``) a case passes only when every
available engine gives the expected outcome, and a disagreement between
engines is reported with each engine's answer.

Building the program (assembling ``-- asm``, decoding ``-- raw``, checking
that the two agree) does not depend on the engine, so it happens once per
case; its failures are what an ``-- error`` case rejected "at assembly" means.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TextIO, Union

from ebpfvm.availability import Availability
from ebpfvm.errors import AssemblyError, EbpfvmError, InputFileError, UserInputError
from ebpfvm.program import Program

from .dataformat import U64_MASK, ConformanceCase, DataFormatError, load_case

# Generous for the suite's loops (prime.data runs a few thousand
# instructions) yet stops a runaway program within a second or two.
CASE_BUDGET = 1_000_000

DATA_SUFFIX = ".data"
ALL_ENGINES = "all"


class Status(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


class Stage(Enum):
    """Where a case stopped when it did not run to completion."""

    PARSE = "parse"  # the .data file itself is malformed
    ASSEMBLE = "assemble"
    DECODE = "decode"  # -- raw is not a well-formed program
    MISMATCH = "mismatch"  # -- asm and -- raw encode different programs
    RUN = "run"
    INTERNAL = "internal"  # a bug in ebpfvm, never an expected failure


# Stages that reject the program before any engine sees it.
BUILD_STAGES = frozenset({Stage.ASSEMBLE, Stage.DECODE})


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one case. ``r0`` is set when the program ran (on every
    engine alike); ``stage`` when it failed somewhere, expectedly or not."""

    name: str
    status: Status
    reason: str = ""
    r0: int | None = None
    engine: str = ""
    stage: Stage | None = None
    path: str = ""

    def line(self) -> str:
        """``PASS name`` / ``FAIL name: reason`` / ``SKIP name: reason``, one line."""
        if self.status is Status.PASS or not self.reason:
            return f"{self.status.value} {self.name}"
        reason = " ".join(self.reason.splitlines())
        return f"{self.status.value} {self.name}: {reason}"


class UnknownEngine(UserInputError):
    """An engine name that no engine is registered under."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown engine {name!r} (choose from {', '.join((*self.known, ALL_ENGINES))})")


class EngineSkip(EbpfvmError):
    """Raised by ``Engine.run`` when the engine cannot run this particular
    program (a helper it lacks, a program type it cannot load...)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Engine(ABC):
    """Something that runs a program on input memory (r1 = memory, r2 = its length)."""

    name: str = ""
    # True when the engine is ebpfvm's own runtime: it reports faults with our
    # messages (so `-- error` texts are checked against them) and runs cases
    # marked interpreter-only. The kernel words its errors its own way and
    # refuses programs its verifier cannot prove safe.
    ebpfvm_semantics: bool = True

    def available(self) -> Availability:
        return Availability(True)

    @abstractmethod
    def run(self, program: Program, mem: bytes) -> int:
        """r0 when the program exits; raise ``ProgramFault`` or
        ``UserInputError`` when it fails, ``EngineSkip`` when it cannot be run here."""


class InterpreterEngine(Engine):
    name = "interp"

    def __init__(self, budget: int = CASE_BUDGET) -> None:
        self.budget = budget

    def available(self) -> Availability:
        try:
            import ebpfvm.interp  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"the interpreter cannot be imported: {exc}")
        return Availability(True)

    def run(self, program: Program, mem: bytes) -> int:
        from ebpfvm.interp import run

        return run(program, mem=mem, budget=self.budget).r0 & U64_MASK


class KernelEngine(Engine):
    """The live kernel through bpf(2): each case is wrapped so that r1/r2 carry
    the input memory and the full 64-bit r0 comes back (``ebpfvm.kernel.execute``),
    and loaded from a forked child. A program its verifier rejects is a SKIP
    naming the kernel's last log line, never a pass."""

    name = "kernel"
    ebpfvm_semantics = False

    def available(self) -> Availability:
        from ebpfvm.kernel import available

        return available()

    def run(self, program: Program, mem: bytes) -> int:
        from ebpfvm.kernel.execute import run_in_kernel

        outcome = run_in_kernel(program, mem)
        if outcome.verdict == "rejected":
            raise EngineSkip(f"kernel verifier: {outcome.error_line}")
        if outcome.verdict == "crashed":
            raise KernelCrash(outcome.detail)
        assert outcome.r0 is not None
        return outcome.r0


class KernelCrash(EbpfvmError):
    """Loading or running the program killed the child process (a kernel Oops)
    or the test run failed: a finding about the kernel, reported as a FAIL."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"kernel crashed: {detail}")


class PendingEngine(Engine):
    """Stands in for an engine that is not built yet, so ``--engine all`` can
    say what it left out."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self._reason = reason

    def available(self) -> Availability:
        return Availability(False, self._reason)

    def run(self, program: Program, mem: bytes) -> int:
        raise EngineSkip(self._reason)


class JitEngine(Engine):
    """ebpfvm's JIT (``ebpfvm.jit``) in checked mode: native code through
    llvmlite, with the interpreter's fault and budget semantics."""

    name = "jit"

    def __init__(self, budget: int = CASE_BUDGET, mode: str = "checked", opt_level: int = 2) -> None:
        self.budget = budget
        self.mode = mode
        self.opt_level = opt_level

    def available(self) -> Availability:
        try:
            import ebpfvm.jit  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"the jit cannot be imported: {exc}")
        return Availability(True)

    def run(self, program: Program, mem: bytes) -> int:
        from ebpfvm.jit import compile

        jit = compile(program, mode=self.mode, opt_level=self.opt_level)
        return jit.run(mem, budget=self.budget).r0 & U64_MASK


EngineFactory = Callable[[], Engine]
_ENGINES: dict[str, EngineFactory] = {
    "interp": InterpreterEngine,
    "kernel": KernelEngine,
    "jit": JitEngine,
}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``--engine name`` (and ``all``) use ``factory()``; replaces a placeholder."""
    if not name or name == ALL_ENGINES:
        raise ValueError(f"invalid engine name {name!r}")
    _ENGINES[name] = factory


def engine_names() -> tuple[str, ...]:
    return tuple(_ENGINES)


EngineSpec = Union[str, Engine, Sequence[Engine]]


def resolve_engines(spec: EngineSpec) -> list[Engine]:
    """An engine name, ``"all"``, an ``Engine`` or a list of them -> engines."""
    if isinstance(spec, Engine):
        return [spec]
    if isinstance(spec, str):
        if spec == ALL_ENGINES:
            return [factory() for factory in _ENGINES.values()]
        factory = _ENGINES.get(spec)
        if factory is None:
            raise UnknownEngine(spec, tuple(_ENGINES))
        return [factory()]
    engines = list(spec)
    if not engines:
        raise ValueError("no engines given")
    return engines


# -- outcomes ------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """A program that could not be built, or an engine run that failed."""

    stage: Stage
    message: str  # without the file name, so an expected text cannot match the path

    def describe(self) -> str:
        return f"{self.stage.value} failed: {self.message}"


@dataclass(frozen=True)
class Returned:
    """An engine run that exited normally."""

    r0: int

    def describe(self) -> str:
        return f"returned {self.r0:#x}"


@dataclass(frozen=True)
class _Skipped:
    reason: str


_Outcome = Union[Failure, Returned]


def build_program(case: ConformanceCase) -> Program | Failure:
    """Assemble and/or decode the case's program; when both are given they
    must encode the same bytes."""
    assembled = None
    if case.asm is not None:
        try:
            from ebpfvm.asm import assemble
        except ImportError as exc:
            return Failure(Stage.INTERNAL, f"the assembler cannot be imported: {exc}")
        try:
            # Without source= messages carry no path (an expected error text
            # must not match the file name); lines are mapped to the file below.
            assembled = assemble(case.asm)
        except AssemblyError as exc:
            line = case.file_line_of_asm_line(exc.line)
            return Failure(Stage.ASSEMBLE, f"line {line}:{exc.column}: {exc.message}")
        except EbpfvmError as exc:
            return Failure(Stage.ASSEMBLE, str(exc))
        except Exception as exc:  # noqa: BLE001 - an assembler bug must not stop the whole run
            return Failure(Stage.INTERNAL, f"assembler crashed: {type(exc).__name__}: {exc}")
    raw = case.raw_bytes()
    decoded = None
    if raw is not None:
        try:
            # No source= here: the message must not contain the path, or an
            # expected error text could match the file name.
            decoded = Program.from_bytes(raw)
        except EbpfvmError as exc:
            return Failure(Stage.DECODE, str(exc))
        except Exception as exc:  # noqa: BLE001
            return Failure(Stage.INTERNAL, f"decoder crashed: {type(exc).__name__}: {exc}")
    if assembled is not None and decoded is not None:
        mismatch = _first_difference(assembled.to_bytes(), raw or b"")
        if mismatch is not None:
            return Failure(Stage.MISMATCH, mismatch)
        # Keep the assembler's labels for nicer traces; the bytes are equal.
        return assembled
    program = assembled if assembled is not None else decoded
    assert program is not None  # the parser guarantees asm or raw
    return program


def _first_difference(asm: bytes, raw: bytes) -> str | None:
    asm_slots = [asm[i:i + 8] for i in range(0, len(asm), 8)]
    raw_slots = [raw[i:i + 8] for i in range(0, len(raw), 8)]
    for index, (a, r) in enumerate(zip(asm_slots, raw_slots)):
        if a != r:
            return (f"asm and raw disagree at slot {index}: asm encodes {int.from_bytes(a, 'little'):#018x}, "
                    f"raw has {int.from_bytes(r, 'little'):#018x}")
    if len(asm_slots) != len(raw_slots):
        return f"asm and raw disagree in length: asm has {len(asm_slots)} slots, raw {len(raw_slots)}"
    return None


def _run_on(engine: Engine, program: Program, case: ConformanceCase) -> _Outcome | _Skipped:
    if case.interpreter_only is not None and not engine.ebpfvm_semantics:
        return _Skipped(f"interpreter-only case: {case.interpreter_only}")
    try:
        return Returned(engine.run(program, case.mem) & U64_MASK)
    except EngineSkip as exc:
        return _Skipped(exc.reason)
    except EbpfvmError as exc:
        return Failure(Stage.RUN, str(exc))
    except Exception as exc:  # noqa: BLE001 - an engine bug is this case's FAIL, not the run's end
        return Failure(Stage.INTERNAL, f"{engine.name} crashed: {type(exc).__name__}: {exc}")


def error_text_matches(expected: str, message: str) -> bool:
    """An expected ``-- error`` text matches a failure message that contains
    it, ignoring case and runs of white space; empty text matches anything."""
    want = " ".join(expected.split()).lower()
    return want in " ".join(message.split()).lower()


def _meets_expectation(case: ConformanceCase, outcome: _Outcome, check_text: bool) -> bool:
    if case.expected_error is None:
        return isinstance(outcome, Returned) and outcome.r0 == case.expected_result
    if not isinstance(outcome, Failure) or outcome.stage in (Stage.INTERNAL, Stage.MISMATCH, Stage.PARSE):
        return False
    return not check_text or error_text_matches(case.expected_error, outcome.message)


def _expectation(case: ConformanceCase) -> str:
    if case.expected_error is None:
        return f"expected {case.expected_result:#x}"
    if case.expected_error:
        return f"expected an error containing {case.expected_error!r}"
    return "expected an error"


def _wrong(case: ConformanceCase, outcome: _Outcome) -> str:
    if isinstance(outcome, Returned):
        return f"{_expectation(case)}, got {outcome.r0:#x}"
    return f"{_expectation(case)}, but {outcome.describe()}"


def run_case(case: ConformanceCase, engine: EngineSpec = "interp") -> CaseResult:
    """Build the case's program once, run it on every available engine and judge."""
    engines = resolve_engines(engine)
    availability = [(e, e.available()) for e in engines]
    usable = [e for e, ok in availability if ok]
    label = ",".join(e.name for e in usable) or ",".join(e.name for e in engines)
    base = dict(name=case.name, engine=label, path=case.path)
    if not usable:
        reasons = "; ".join(f"{e.name}: {ok.reason}" for e, ok in availability)
        return CaseResult(status=Status.SKIP, reason=f"no engine available ({reasons})", **base)

    built = build_program(case)
    if isinstance(built, Failure):
        # Engine-independent, so every engine would see the same failure.
        ok = _meets_expectation(case, built, check_text=True)
        if ok:
            return CaseResult(status=Status.PASS, stage=built.stage, reason=built.describe(), **base)
        return CaseResult(status=Status.FAIL, stage=built.stage, reason=_wrong(case, built), **base)

    outcomes: list[tuple[Engine, _Outcome]] = []
    skipped: list[tuple[Engine, str]] = []
    for e in usable:
        outcome = _run_on(e, built, case)
        if isinstance(outcome, _Skipped):
            skipped.append((e, outcome.reason))
        else:
            outcomes.append((e, outcome))
    if not outcomes:
        reasons = "; ".join(f"{e.name}: {why}" if len(usable) > 1 else why for e, why in skipped)
        return CaseResult(status=Status.SKIP, reason=reasons, **base)
    label = ",".join(e.name for e, _ in outcomes)
    base["engine"] = label

    stage = next((o.stage for _, o in outcomes if isinstance(o, Failure)), None)
    returned = {o.r0 for _, o in outcomes if isinstance(o, Returned)}
    r0 = next(iter(returned)) if len(returned) == 1 else None
    if all(_meets_expectation(case, o, check_text=e.ebpfvm_semantics) for e, o in outcomes):
        how = next((o.describe() for _, o in outcomes if isinstance(o, Failure)), "")
        return CaseResult(status=Status.PASS, r0=r0, stage=stage, reason=how, **base)

    distinct = {_summary(o) for _, o in outcomes}
    if len(distinct) > 1:
        answers = "; ".join(f"{e.name} {o.describe()}" for e, o in outcomes)
        reason = f"engines disagree: {answers} ({_expectation(case)})"
    else:
        reason = _wrong(case, outcomes[0][1])
    return CaseResult(status=Status.FAIL, reason=reason, r0=r0, stage=stage, **base)


def _summary(outcome: _Outcome) -> str:
    # Failures agree when they fail at the same stage; their wording may differ.
    return f"r0={outcome.r0:#x}" if isinstance(outcome, Returned) else f"failed at {outcome.stage.value}"


# -- files ---------------------------------------------------------------------

def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, directories as their ``*.data`` files (sorted, not
    recursive). A missing path or a directory without cases is an error."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == DATA_SUFFIX and p.is_file())
            if not found:
                raise InputFileError(str(path), f"no {DATA_SUFFIX} files in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise InputFileError(str(path), "not a file or directory")
        else:
            raise InputFileError(str(path), "no such file or directory")
    return files


def run_file(path: str | os.PathLike[str], engine: EngineSpec = "interp") -> CaseResult:
    """Load and run one file; a malformed file is this case's FAIL."""
    try:
        case = load_case(path)
    except DataFormatError as exc:
        return CaseResult(name=Path(path).stem, status=Status.FAIL, reason=str(exc), stage=Stage.PARSE,
                          path=str(path))
    return run_case(case, engine)


def run_paths(paths: Iterable[str | os.PathLike[str]], engine: EngineSpec = "interp") -> Iterator[CaseResult]:
    """Results for every case under ``paths``, in order. Paths and the engine
    are checked before the first case runs (``InputFileError``, ``UnknownEngine``)."""
    files = expand_paths(paths)
    engines = resolve_engines(engine)

    def results() -> Iterator[CaseResult]:
        for file in files:
            yield run_file(file, engines)

    return results()


def summary_line(results: Sequence[CaseResult]) -> str:
    passed = sum(r.status is Status.PASS for r in results)
    failed = sum(r.status is Status.FAIL for r in results)
    skipped = sum(r.status is Status.SKIP for r in results)
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    return line


def conformance_command(paths: Sequence[str], engine: str, out: TextIO) -> int:
    """``ebpfvm conformance PATH... --engine NAME``: one line per case and a
    summary; 0 when nothing failed, 1 otherwise. A missing path or unknown
    engine raises ``UserInputError`` before any case runs (the CLI exits 2)."""
    engines = resolve_engines(engine)
    results_iter = run_paths(paths, engines)
    if engine == ALL_ENGINES:
        for e in engines:
            availability = e.available()
            if not availability:
                out.write(f"note: engine {e.name} left out: {availability.reason}\n")
    results: list[CaseResult] = []
    for result in results_iter:
        results.append(result)
        out.write(result.line() + "\n")
    out.write(summary_line(results) + "\n")
    return 1 if any(r.status is Status.FAIL for r in results) else 0
