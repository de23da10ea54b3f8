"""``ebpfvm conformance record|check``: record kernel verdicts into cases, or check them."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from typing import Sequence, TextIO

from .caseformat import _read_text, iter_case_files, load_case, parse_case, update_verdict, write_atomically
from .kernel import CaseRunError, kernel_outcome
from .model import CaseBuildError, CaseFormatError, Outcome

# --- commands --------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One case checked against the kernel: ``actual`` is None when it could
    not be run (``problem`` says why)."""

    path: str
    expected: Outcome | None
    actual: Outcome | None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.actual is not None and self.expected == self.actual


def check_case_file(path: str) -> CheckResult:
    try:
        case = load_case(path)
        actual = kernel_outcome(case)
    except (CaseFormatError, CaseBuildError, CaseRunError) as exc:
        return CheckResult(path, None, None, str(exc))
    return CheckResult(path, case.expected, actual)


def mismatch_table(results: Sequence[CheckResult]) -> str:
    """The results that are not ok, as an aligned text table."""
    rows = [("case", "recorded", "kernel")]
    for r in results:
        if r.ok:
            continue
        name = os.path.basename(r.path)
        if r.actual is None:
            rows.append((name, r.expected.describe() if r.expected else "-", f"ERROR {r.problem}"))
        else:
            rows.append((name, r.expected.describe() if r.expected else "(not recorded)", r.actual.describe()))
    if len(rows) == 1:
        return ""
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]}".rstrip() for row in rows)


def _kernel_status() -> str:
    """"" when the kernel can be used, else why not."""
    try:
        from ebpfvm import kernel
    except Exception as exc:  # noqa: BLE001 - the bridge itself is unusable
        return f"cannot import the kernel bridge: {exc}"
    status = kernel.available()
    return "" if status else status.reason


def _files_for_kernel_run(paths: Sequence[str], out: TextIO) -> list[str] | None:
    """The case files to load, or None (after saying why) when there are none
    or the kernel cannot be used."""
    files = iter_case_files(paths)
    if not files:
        print("no .case files found", file=out)
        return None
    reason = _kernel_status()
    if reason:
        print(f"kernel eBPF unavailable: {reason}", file=out)
        return None
    return files


def check_command(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """``ebpfvm conformance check PATH...``: load every case in the kernel and
    report those whose recorded verdict or error line no longer match.
    Exit status: 0 all match, 1 some differ or could not be run, 2 no cases
    or no kernel."""
    files = _files_for_kernel_run(paths, out)
    if files is None:
        return 2
    results = [check_case_file(path) for path in files]
    bad = [r for r in results if not r.ok]
    if bad:
        print(mismatch_table(results), file=out)
    print(f"{len(results)} cases: {len(results) - len(bad)} match the kernel, {len(bad)} do not", file=out)
    return 1 if bad else 0


def record_case_file(path: str) -> tuple[Outcome | None, Outcome]:
    """Load the case at ``path`` in the kernel and rewrite its recorded
    sections to what the kernel said; returns (before, after)."""
    text = _read_text(path)
    case = parse_case(text, path)
    outcome = kernel_outcome(case)
    new_text = update_verdict(text, outcome, path)
    if new_text != text:
        # Never write something we would not read back identically.
        written = parse_case(new_text, path)
        if written.expected != outcome or dataclasses.replace(written, verdict=None, error=None, errno=None) != \
                dataclasses.replace(case, verdict=None, error=None, errno=None):
            raise CaseFormatError(path, "internal error: rewriting the verdict would change the case", None)
        write_atomically(path, new_text)
    return case.expected, outcome


def record_command(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """``ebpfvm conformance record PATH...``: load every case in the kernel
    and write the kernel's verdict, error line and errno into the file.
    Prints one line per case that changed or failed, then a summary.
    Exit status: 0 all recorded, 1 some could not be, 2 no cases or no kernel."""
    files = _files_for_kernel_run(paths, out)
    if files is None:
        return 2
    failures = changed = 0
    for path in files:
        try:
            before, after = record_case_file(path)
        except (CaseFormatError, CaseBuildError, CaseRunError) as exc:
            failures += 1
            print(f"FAILED {exc}", file=out)
            continue
        if before != after:
            changed += 1
            was = before.describe() if before else "not recorded"
            print(f"NEW    {path}: {after.describe()} (was: {was})", file=out)
    print(f"{len(files)} cases: {changed} changed, {len(files) - changed - failures} unchanged, "
          f"{failures} failed", file=out)
    return 1 if failures else 0
