"""The verifier against the kernel-recorded verdict corpus (conformance/verifier).

Every case is verified as the kernel loaded it (program type, flags, attach
type, maps) and our verdict and error line are compared with the kernel's.
Asserts: no accept of a kernel memory-safety rejection, and a verdict
agreement rate at or above ``AGREEMENT_FLOOR``.  The table of disagreements
is printed (``pytest -s``).

Cases the kernel rejects at the 1,000,000-instruction complexity limit take
one to two minutes each here (pure Python, ~15k insns/s); they run only with
``EBPFVM_SLOW=1`` and are otherwise left out of the count (said in the output).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from conformance import verdicts as v
from test_verifier_structure import program_of
from ebpfvm.verifier import verify

AGREEMENT_FLOOR = 0.99
SLOW = os.environ.get("EBPFVM_SLOW") == "1"
_MEMORY_SAFETY = ("outside", "invalid mem access", "!read_ok", "invalid read from stack", "invalid write to stack",
                  "packet", "map value", "invalid access", "min value", "max value", "misaligned",
                  "unbounded memory", "bpf_context", "indirect", "beyond struct")


def _kind(line: str | None) -> str:
    if line is None:
        return "-"
    import re
    return re.sub(r"-?\b(0x)?[0-9a-f]*[0-9][0-9a-f]*\b", "N", line)[:60]


@pytest.fixture(scope="module")
def results():
    rows = []
    for case in v.load_corpus():
        if case.verdict is None:
            continue
        if not SLOW and case.error and case.error.startswith("BPF program is too large"):
            rows.append((case, None))
            continue
        result = verify(program_of(case), prog_type=case.prog_type, prog_flags=case.prog_flags_value,
                        expected_attach_type=case.attach_type)
        rows.append((case, result))
    return rows


def test_corpus_agreement(results):
    run = [(c, r) for c, r in results if r is not None]
    skipped = [c.name for c, r in results if r is None]
    agree = [c for c, r in run if r.verdict == c.verdict]
    same_line = [c for c, r in run if r.verdict == c.verdict == "reject" and r.error.message == c.error]
    rejects = [c for c in agree if c.verdict == "reject"]
    bad = [(c, r) for c, r in run if r.verdict != c.verdict]
    by_kind: Counter = Counter()
    ok_kind: Counter = Counter()
    for c, r in run:
        k = _kind(c.error) if c.verdict == "reject" else "accept"
        by_kind[k] += 1
        ok_kind[k] += r.verdict == c.verdict
    print(f"\nverifier corpus: {len(agree)}/{len(run)} verdicts agree ({len(agree) / len(run):.1%}); "
          f"{len(same_line)}/{len(rejects)} agreeing rejects have the kernel's exact error line; "
          f"{len(skipped)} complexity-limit cases not run (EBPFVM_SLOW=1 runs them): {', '.join(skipped)}")
    print("disagreements by kernel error kind:")
    for k, n in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        if ok_kind[k] != n:
            print(f"  {ok_kind[k]:3}/{n:<3} {k}")
    if bad:
        print(f"{'case':45} {'kernel':60} ours")
        for c, r in bad:
            print(f"{c.name:45} {c.verdict + ' ' + (c.error or ''):60} {r.verdict} {r.error.message if r.error else ''}")
    wrong_lines = [(c, r) for c, r in run if r.verdict == c.verdict == "reject" and r.error.message != c.error]
    if wrong_lines:
        print("rejects with a different error line:")
        for c, r in wrong_lines:
            print(f"  {c.name:45} kernel: {c.error!r} ours: {r.error.message!r}")
    unsafe = [c.name for c, r in bad if c.verdict == "reject" and r.verdict == "accept"
              and any(word in (c.error or "") for word in _MEMORY_SAFETY)]
    assert not unsafe, f"accepted what the kernel rejects for memory safety: {unsafe}"
    assert len(agree) / len(run) >= AGREEMENT_FLOOR


def test_corpus_errnos_of_agreeing_rejects(results):
    """Where our error line is the kernel's, the errno is too (most of the time:
    the table says which differ)."""
    rows = [(c, r) for c, r in results if r is not None and c.verdict == r.verdict == "reject"
            and r.error.message == c.error]
    differ = [(c.name, c.errno, r.error.errno) for c, r in rows if c.errno != r.error.errno]
    print("\nerrno differences:", differ)
    assert len(differ) <= len(rows) // 10
