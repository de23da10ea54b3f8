"""The public bpf_conformance suite (shared/bpf_conformance beside the checkout).

``tests/`` must pass completely on the interpreter. ``negative/`` holds inputs
an implementation must not accept: none may PASS, except an ``-- error`` case
that was rejected while assembling or decoding (rejecting it is the point).
"""

from __future__ import annotations



from ebpfvm.conformance import run_paths
from ebpfvm.conformance.runner import BUILD_STAGES, Stage, Status

from shared_suite import SHARED_SUITE as SUITE
from shared_suite import needs_shared_suite

EXPECTED_POSITIVE = 313

pytestmark = needs_shared_suite


def test_every_suite_case_passes() -> None:
    results = list(run_paths([SUITE / "tests"], "interp"))
    assert len(results) == EXPECTED_POSITIVE
    failures = [r.line() for r in results if r.status is not Status.PASS]
    assert not failures, "\n".join(failures)


def test_negative_cases_are_never_accepted() -> None:
    results = list(run_paths([SUITE / "negative"], "interp"))
    assert results
    wrongly_passed = [r.line() for r in results if r.status is Status.PASS and r.stage not in BUILD_STAGES]
    assert not wrongly_passed, "\n".join(wrongly_passed)
    # A crash inside ebpfvm is never the right way to reject an input.
    crashes = [r.line() for r in results if r.stage is Stage.INTERNAL]
    assert not crashes, "\n".join(crashes)
    # Malformed files are reported as FAIL lines naming the file and line.
    parse_failures = [r for r in results if r.stage is Stage.PARSE]
    assert all(r.status is Status.FAIL and r.path in r.reason for r in parse_failures)
