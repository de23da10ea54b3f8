"""Callbacks iterated to a fixpoint and constant-key array lookups, against
the live kernel.

The programs are the kernel-recorded corpus cases named below
(``conformance/verifier/callback-*.case``, ``map-*-const-key-*.case``): each
is loaded again in the kernel here (with a minimal BTF, as callbacks need
func_info) and our verdict and error line must be the kernel's.  The cases
that only the second or third callback iteration can reject are the point:
a verifier that explores a callback once accepts them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ebpfvm.verifier import verify
from kernel_support import require_kernel
from test_verifier_structure import program_of

from conformance import verdicts as v
from conformance.verdicts.kernel import kernel_outcome

ROOT = Path(__file__).resolve().parents[1]
NEVER_CONVERGES = ROOT / "tests" / "fixtures" / "callback-for-each-never-converges.case"

CALLBACK_CASES = [
    "callback-second-iteration-pointer-overwritten",  # rejected on the 2nd iteration only
    "callback-one-iteration-pointer-overwritten",     # ... which bpf_loop(1, ...) never runs
    "callback-counter-offset-within-bound",
    "callback-counter-offset-third-iteration",        # rejected on the 3rd iteration only
    "callback-counter-indexes-after-loop-ok",
    "callback-counter-indexes-after-loop-overflow",
    "callback-loop-imprecise-counter-converges",
    "callback-for-each-imprecise-counter-converges",
    "callback-in-subprog-counter-third-iteration",
    "callback-nested-bpf-loop",
    "callback-in-bounded-loop",
    "callback-counter-decides-return",
]
CONST_KEY_CASES = [
    "map-array-const-key-not-null", "map-array-const-key-out-of-range", "map-array-const-key-narrow-spill",
    "map-array-const-key-st-aligned", "map-array-const-key-st-unaligned", "map-array-const-key-spill-size-mismatch",
    "map-array-const-key-spill-upper-half", "map-array-const-key-wide-value", "map-array-const-key-unknown",
    "map-percpu-array-const-key-not-null", "map-hash-const-key-may-be-null",
]


def _case(name: str) -> v.Case:
    return v.load_case(os.path.join(v.CORPUS_DIR, name + ".case"))


def _ours(case: v.Case, **kw):
    return verify(program_of(case), prog_type=case.prog_type, prog_flags=case.prog_flags_value,
                  expected_attach_type=case.attach_type, **kw)


def _outcome(result) -> tuple[str, str | None]:
    return result.verdict, result.error.message if result.error else None


@pytest.mark.parametrize("name", CALLBACK_CASES + CONST_KEY_CASES)
def test_matches_live_kernel(name):
    require_kernel()
    case = _case(name)
    kernel = kernel_outcome(case)
    assert (kernel.verdict, kernel.error) == (case.verdict, case.error), "the recording is stale"
    assert _outcome(_ours(case)) == (kernel.verdict, kernel.error)


def test_second_iteration_is_what_rejects():
    """The two pointer-overwrite cases differ only in nr_loops (2 vs 1)."""
    bad, good = _case(CALLBACK_CASES[0]), _case(CALLBACK_CASES[1])
    assert _outcome(_ours(bad)) == ("reject", "R3 invalid mem access 'scalar'")
    assert _ours(good).verdict == "accept"


def test_imprecise_counter_is_widened_not_unrolled():
    """bpf_loop(1000, ...) with a callback that only counts: the count is
    widened when the callback returns, so a few dozen instructions suffice
    (unrolled, it would be thousands)."""
    for name in ("callback-loop-imprecise-counter-converges", "callback-for-each-imprecise-counter-converges"):
        result = _ours(_case(name))
        assert result.verdict == "accept", result.log
        assert result.stats["processed_insns"] < 60, (name, result.stats)


def test_never_converging_callback_hits_the_complexity_limit(monkeypatch):
    """A for_each_map_elem callback whose counter is needed exactly never
    reaches a fixpoint: the kernel gives up at its instruction limit.  Ours
    runs with the limit lowered (the message counts the same way)."""
    from ebpfvm.verifier import explore

    case = v.load_case(str(NEVER_CONVERGES))
    assert case.error == "BPF program is too large. Processed 1000001 insn"  # as the kernel recorded it
    monkeypatch.setattr(explore, "COMPLEXITY_LIMIT", 5_000)
    result = _ours(case)
    assert _outcome(result) == ("reject", "BPF program is too large. Processed 5001 insn")


@pytest.mark.skipif(os.environ.get("EBPFVM_SLOW") != "1", reason="the kernel needs ~40 s for it (EBPFVM_SLOW=1)")
def test_never_converging_callback_in_the_kernel():
    require_kernel()
    case = v.load_case(str(NEVER_CONVERGES))
    assert kernel_outcome(case, timeout=300) == case.expected


def test_loop_sum_processed_count_matches_kernel():
    """examples/loop_sum: bpf_loop's callback runs twice before its call site
    is covered; the processed count is the kernel's."""
    require_kernel()
    from ebpfvm.elf import load_object
    from ebpfvm.kernel.objects import verify_object_in_kernel

    obj = load_object(str(ROOT / "examples" / "loop_sum.o"))
    kernel = verify_object_in_kernel(obj)["sum_squares"]
    ours = verify(obj.program("sum_squares"), prog_type="socket_filter")
    assert kernel.accepted and ours.verdict == "accept"
    assert ours.stats["processed_insns"] == kernel.stats.insns_processed


def test_const_key_needs_privilege():
    """As the kernel (env->bpf_capable), an unprivileged load keeps the NULL."""
    case = _case("map-array-const-key-not-null")
    assert _ours(case).verdict == "accept"
    result = _ours(case, privileged=False)
    assert _outcome(result) == ("reject", "R0 invalid mem access 'map_value_or_null'")
