"""Differential fuzzing of verdicts: ``ebpfvm.verifier.verify`` against the kernel's BPF_PROG_LOAD.

Each generated program (``verifier_fuzz_programs.verifier_programs``) is
verified by us and loaded by the live kernel in a forked child (a kernel Oops
kills the child, not the campaign), and the pair of verdicts is classified:

``agree-accept``                   both accept
``agree-reject-same-line``         both reject with the kernel's exact error line
``agree-reject-other-line``        both reject, for a differently worded (or placed) reason
``ours-accepts-kernel-rejects``    UNSAFE for us: a bug to fix, or a known kernel defect
``ours-rejects-kernel-accepts``    our verifier is less precise than the kernel's
``kernel-crashed``                 the loading child died or hung (a kernel finding)
``ours-raised``                    our verifier raised instead of giving a verdict (a bug)

A disagreement that a known kernel defect explains (``verifier_fuzz_defects``)
is counted under the defect's name too.  A campaign *fails* on an
``ours-accepts-kernel-rejects`` that no known defect explains, or on
``ours-raised``.

Disagreements can be written out as ``.case`` files of the verdict corpus
format (the program, its type, its maps and the kernel's verdict, with our
verdict and the kernel's log in the comments), so ``ebpfvm conformance check
FILE`` reproduces the kernel's side and ``ebpfvm verify`` ours.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from ebpfvm.errors import UserInputError

from .verifier_fuzz_defects import (
    OURS_ACCEPTS_KERNEL_REJECTS,
    OURS_REJECTS_KERNEL_ACCEPTS,
    KnownDefect,
    known_defect,
    suspects,
)
from .verifier_fuzz_programs import PROG_TYPES, FuzzProgram, and_in_loop

AGREE_ACCEPT = "agree-accept"
AGREE_REJECT_SAME = "agree-reject-same-line"
AGREE_REJECT_OTHER = "agree-reject-other-line"
UNSAFE = OURS_ACCEPTS_KERNEL_REJECTS
IMPRECISE = OURS_REJECTS_KERNEL_ACCEPTS
KERNEL_CRASHED = "kernel-crashed"
OURS_RAISED = "ours-raised"
KINDS = (AGREE_ACCEPT, AGREE_REJECT_SAME, AGREE_REJECT_OTHER, UNSAFE, IMPRECISE, KERNEL_CRASHED, OURS_RAISED)
DISAGREEMENTS = (UNSAFE, IMPRECISE, KERNEL_CRASHED, OURS_RAISED)

_KERNEL_LOG_TAIL = 40  # lines of the kernel's log kept in a written case


@dataclass(frozen=True)
class Verdict:
    """One side's answer: ``accept``/``reject``/``crashed``/``raised``, the
    error line (rejects), the errno name (kernel rejects) and the log."""

    verdict: str
    error: str | None = None
    errno: str | None = None
    log: str = ""

    def describe(self) -> str:
        if self.verdict == "reject":
            return f"reject{' ' + self.errno if self.errno else ''}: {self.error}"
        return self.verdict + (f": {self.error}" if self.error else "")


@dataclass(frozen=True)
class Finding:
    """A program and how the two verdicts compare."""

    program: FuzzProgram
    kind: str
    ours: Verdict
    kernel: Verdict
    defect: KnownDefect | None = None

    @property
    def fails(self) -> bool:
        """An unexplained unsafe disagreement, or our verifier raising."""
        return (self.kind == UNSAFE and self.defect is None) or self.kind == OURS_RAISED


@dataclass
class CampaignResult:
    findings: list[Finding] = field(default_factory=list)
    refused: int = 0  # generated programs the AND-in-loop guard kept from the kernel
    seconds: float = 0.0

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]

    def counts(self) -> Counter:
        return Counter(f.kind for f in self.findings)


# --- one program ------------------------------------------------------------------


def build(program: FuzzProgram):
    """The ``Program`` our verifier sees: instructions, type and map definitions."""
    from ebpfvm import Program, assemble
    from ebpfvm.maps.definition import MapDefinition

    assembled = assemble(program.asm, source="<verifier-fuzz>")
    maps = [MapDefinition(name=f"map{i}", map_type=m.map_type, key_size=m.key_size, value_size=m.value_size,
                          max_entries=m.max_entries) for i, m in enumerate(program.maps)]
    return Program(assembled.instructions, source="<verifier-fuzz>", prog_type=program.prog_type, maps=maps)


def our_verdict(built) -> Verdict:
    from ebpfvm.verifier import verify

    try:
        result = verify(built, prog_type=built.prog_type)
    except Exception as exc:  # noqa: BLE001 - a crash of ours is a finding, not the end of the campaign
        return Verdict("raised", f"{type(exc).__name__}: {exc}", log=traceback.format_exc())
    if result.accepted:
        return Verdict("accept", log=result.log)
    return Verdict("reject", result.error.message, result.error.errno, result.log)


def kernel_verdict(built, program: FuzzProgram, timeout: float = 30.0, log_level: int = 1) -> Verdict:
    from ebpfvm.kernel.isolation import (
        Accepted,
        Crashed,
        MapSpec,
        load_and_run_isolated,
    )

    from .verdicts import errno_name

    # create only the maps the program refers to (map creation is most of a load's cost)
    used = [insn.imm for insn in built.instructions if insn.opcode == 0x18 and insn.src in (1, 2)]
    specs = [MapSpec(m.map_type, m.key_size, m.value_size, m.max_entries)
             for m in program.maps[:max(used, default=-1) + 1]]
    extra = {"log_size": 1 << 24} if log_level > 1 else {}  # level 2 logs every state
    outcome = load_and_run_isolated(built.to_bytes(), program.prog_type, maps=specs, run=False,
                                    log_level=log_level, timeout=timeout, **extra)
    if isinstance(outcome, Accepted):
        return Verdict("accept", log=outcome.log)
    if isinstance(outcome, Crashed):
        return Verdict("crashed", outcome.detail)
    return Verdict("reject", outcome.error_line or None, errno_name(outcome.errno), outcome.log)


def classify(ours: Verdict, kernel: Verdict) -> str:
    if ours.verdict == "raised":
        return OURS_RAISED
    if kernel.verdict == "crashed":
        return KERNEL_CRASHED
    if ours.verdict == kernel.verdict == "accept":
        return AGREE_ACCEPT
    if ours.verdict == kernel.verdict == "reject":
        return AGREE_REJECT_SAME if ours.error == kernel.error else AGREE_REJECT_OTHER
    return UNSAFE if ours.verdict == "accept" else IMPRECISE


class RefusedProgram(UserInputError):
    """A program with an AND inside a loop: never loaded (it can Oops the kernel)."""

    def __init__(self, slot: int) -> None:
        self.slot = slot
        super().__init__(f"insn {slot}: AND inside a loop; not loaded into the kernel (see verifier_fuzz_defects)")


def check_program(program: FuzzProgram) -> Finding:
    """Verify ``program`` both ways and classify.  ``RefusedProgram`` if the
    AND-in-loop guard keeps it from the kernel."""
    built = build(program)
    slot = and_in_loop(built.instructions)
    if slot is not None:
        raise RefusedProgram(slot)
    ours = our_verdict(built)
    kernel = kernel_verdict(built, program)
    kind = classify(ours, kernel)
    defect = None
    if kind in (UNSAFE, IMPRECISE) and suspects(built.instructions):
        # the recognisers read the kernel's register states: load once more at log level 2
        detailed = kernel_verdict(built, program, log_level=2)
        defect = known_defect(kind, built.instructions, detailed.log)
    return Finding(program, kind, ours, kernel, defect)


# --- a campaign -----------------------------------------------------------------------


def run_campaign(count: int, *, seed: int = 0, prog_types: Sequence[str] = PROG_TYPES,
                 bias_subprog_stack: bool = False,
                 on_finding: Callable[[int, Finding], None] | None = None) -> CampaignResult:
    """Generate ``count`` programs (deterministically from ``seed``) and check
    each.  ``on_finding(index, finding)`` is called as each one completes."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from .verifier_fuzz_programs import verifier_programs

    result = CampaignResult()
    started = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=False, print_blob=False)
    @given(verifier_programs(tuple(prog_types), bias_subprog_stack))
    def campaign(program: FuzzProgram) -> None:
        try:
            finding = check_program(program)
        except RefusedProgram:
            result.refused += 1
            return
        result.findings.append(finding)
        if on_finding is not None:
            on_finding(len(result.findings) - 1, finding)

    campaign()
    result.seconds = time.perf_counter() - started
    return result


def table(result: CampaignResult) -> str:
    """The classification table, one kind per line, with the known-defect split."""
    counts = result.counts()
    total = max(1, len(result.findings))
    lines = [f"{'kind':32} {'count':>6} {'share':>7}"]
    for kind in KINDS:
        lines.append(f"{kind:32} {counts.get(kind, 0):6} {counts.get(kind, 0) / total:7.1%}")
    defects = Counter(f.defect.name for f in result.findings if f.defect is not None)
    for name, n in sorted(defects.items()):
        lines.append(f"  of which known kernel defect {name}: {n}")
    lines.append(f"{'total':32} {len(result.findings):6}   ({result.refused} refused by the AND-in-loop guard; "
                 f"{result.seconds:.1f} s)")
    return "\n".join(lines)


# --- writing disagreements ----------------------------------------------------------------


def case_text(finding: Finding) -> str:
    """A ``.case`` file for ``finding``: the kernel's verdict as the recorded
    one; the classification, our verdict and the kernel's log in comments."""
    from .verdicts import Case, MapSpec, format_case

    kernel = finding.kernel
    description = [f"verifier fuzz: {finding.kind}"
                   + (f" (known kernel defect {finding.defect.name})" if finding.defect else ""),
                   f"ours:   {finding.ours.describe()}", f"kernel: {kernel.describe()}",
                   f"features: {', '.join(finding.program.features)}"]
    if finding.ours.verdict == "raised":
        description += ["", "our traceback:"] + finding.ours.log.rstrip().splitlines()
    log_lines = kernel.log.rstrip().splitlines()
    if log_lines:
        description += ["", f"kernel log (last {_KERNEL_LOG_TAIL} lines):"] + log_lines[-_KERNEL_LOG_TAIL:]
    maps = tuple(MapSpec(m.map_type, m.key_size, m.value_size, m.max_entries) for m in finding.program.maps)
    recorded = kernel.verdict if kernel.verdict in ("accept", "reject") else None
    case = Case(prog_type=finding.program.prog_type, asm=finding.program.asm, description="\n".join(description),
                maps=maps, verdict=recorded, error=kernel.error if recorded == "reject" else None,
                errno=kernel.errno if recorded == "reject" else None)
    return format_case(case)


def write_disagreements(findings: Iterable[tuple[int, Finding]], out_dir: str) -> list[str]:
    """Write each disagreement as ``NNNNN-KIND.case`` in ``out_dir``; the paths."""
    paths = []
    for index, finding in findings:
        if finding.kind not in DISAGREEMENTS:
            continue
        suffix = finding.defect.name if finding.defect else finding.kind
        path = os.path.join(out_dir, f"{index:05d}-{suffix}.case")
        with open(path, "w") as fh:
            fh.write(case_text(finding))
        paths.append(path)
    return paths


# --- the command -----------------------------------------------------------------------------


def fuzz_verifier_command(count: int, seed: int, out_dir: str | None, prog_types: Sequence[str] | None,
                          bias_subprog_stack: bool, out: TextIO) -> int:
    """``ebpfvm fuzz-verifier``: 0 without a failing finding, 1 with one."""
    from ebpfvm.kernel import available

    status = available()
    if not status:
        raise UserInputError(f"fuzz-verifier needs the live kernel's bpf(2): {status.reason}")
    if out_dir is not None:
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"--out {out_dir}: {exc.strerror or exc}") from None
    written: list[str] = []

    def report(index: int, finding: Finding) -> None:
        if finding.kind in DISAGREEMENTS:
            label = finding.kind + (f" [known kernel defect {finding.defect.name}]" if finding.defect else "")
            out.write(f"#{index}: {label}: ours {finding.ours.describe()} / kernel {finding.kernel.describe()}\n")
            if out_dir is not None:
                written.extend(write_disagreements([(index, finding)], out_dir))
            out.flush()

    result = run_campaign(count, seed=seed, prog_types=prog_types or PROG_TYPES,
                          bias_subprog_stack=bias_subprog_stack, on_finding=report)
    out.write(table(result) + "\n")
    if written:
        out.write(f"{len(written)} disagreement(s) written to {out_dir}\n")
    failures = result.failures
    if failures:
        out.write(f"FAIL: {len(failures)} unexplained ours-accepts-kernel-rejects or ours-raised finding(s)\n")
        return 1
    return 0
