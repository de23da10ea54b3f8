"""The conformance suites on the live kernel, side by side with the interpreter."""

from __future__ import annotations

from pathlib import Path


from ebpfvm.conformance import run_case
from ebpfvm.conformance.dataformat import load_case
from ebpfvm.conformance.runner import Status, resolve_engines

from kernel_support import require_kernel
from shared_suite import needs_shared_suite, suite_files

REPO = Path(__file__).resolve().parents[1]
OWN_CASES = sorted((REPO / "conformance" / "cases").glob("*.data"))


def _run_all(paths: list[Path]) -> dict[str, list]:
    interp, kernel = resolve_engines("interp") + resolve_engines("kernel")
    results: dict[str, list] = {"kernel": [], "all": []}
    for path in paths:
        case = load_case(path)
        results["kernel"].append(run_case(case, kernel))
        results["all"].append(run_case(case, [interp, kernel]))
    return results


def _table(results) -> str:
    return "\n".join(r.line() for r in results if r.status is Status.FAIL)


def test_own_corpus_kernel_and_interpreter_agree():
    require_kernel()
    results = _run_all(OWN_CASES)
    assert not [r for r in results["all"] if r.status is Status.FAIL], _table(results["all"])
    kernel = results["kernel"]
    assert not [r for r in kernel if r.status is Status.FAIL], _table(kernel)
    ran = [r for r in kernel if r.status is Status.PASS]
    print(f"kernel: {len(ran)} passed, {len(kernel) - len(ran)} skipped of {len(kernel)}")
    assert len(ran) >= 140


@needs_shared_suite
def test_shared_suite_kernel_and_interpreter_agree():
    require_kernel()
    results = _run_all(suite_files("tests"))
    assert not [r for r in results["all"] if r.status is Status.FAIL], _table(results["all"])
    kernel = results["kernel"]
    skipped = [r for r in kernel if r.status is Status.SKIP]
    passed = [r for r in kernel if r.status is Status.PASS]
    # The 6.18 verifier refuses out-of-range immediate shifts and has no callx.
    assert all("invalid shift" in r.reason or "unknown opcode 8d" in r.reason for r in skipped), \
        "\n".join(r.line() for r in skipped)
    assert len(passed) >= 300 and len(passed) + len(skipped) == len(kernel)
