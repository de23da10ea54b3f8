"""The verifier verdict corpus (conformance/verifier/*.case) against the live kernel.

Every case's recorded verdict, error line and errno were written by the
recorder from this kernel; here every case is loaded again and must still
get the same answer.  The kernel-free tests check the corpus itself (size,
balance, every case built and recorded).  Kernel tests skip with the reason
when bpf(2) is unavailable, and fail instead under EBPFVM_REQUIRE_KERNEL=1.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections import Counter

import pytest

from ebpfvm.conformance import verdicts as v

try:  # tests/ on sys.path (rootdir-less layout) or tests as a package
    from kernel_support import kernel, require_kernel  # noqa: F401
except ImportError:  # pragma: no cover
    from tests.kernel_support import kernel, require_kernel  # noqa: F401

MIN_CASES = 150


@pytest.fixture(scope="module")
def corpus() -> list[v.Case]:
    return v.load_corpus()


# --- the corpus itself (no kernel) ----------------------------------------------


def test_corpus_size_and_balance(corpus: list[v.Case]) -> None:
    verdicts = Counter(case.verdict for case in corpus)
    assert len(corpus) >= MIN_CASES, f"only {len(corpus)} cases"
    assert verdicts[v.ACCEPT] > 0 and verdicts[v.REJECT] > 0, verdicts
    # Roughly balanced: neither verdict below a third of the corpus.
    assert min(verdicts[v.ACCEPT], verdicts[v.REJECT]) >= len(corpus) // 3, verdicts


def test_every_case_is_recorded(corpus: list[v.Case]) -> None:
    unrecorded = [case.name for case in corpus if case.verdict is None]
    assert not unrecorded, f"run `ebpfvm conformance record` on: {unrecorded}"
    no_errno = [case.name for case in corpus if case.verdict == v.REJECT and case.errno is None]
    assert not no_errno, f"rejects without a recorded errno: {no_errno}"


def test_every_case_builds(corpus: list[v.Case]) -> None:
    for case in corpus:
        insns = v.build_program(case)
        assert insns and len(insns) % 8 == 0, case.name


def test_case_names_and_descriptions(corpus: list[v.Case]) -> None:
    for case in corpus:
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)+", case.name), f"{case.name}: use kebab-case words"
        assert case.description, f"{case.name}: add a '#' description"


def test_no_duplicate_programs(corpus: list[v.Case]) -> None:
    seen: dict[tuple, str] = {}
    for case in corpus:
        key = (v.build_program(case), case.prog_type, case.attach_type, case.prog_flags, case.maps)
        assert key not in seen, f"{case.name} duplicates {seen[key]}"
        seen[key] = case.name


def test_recorded_files_are_canonical_for_the_recorder(corpus: list[v.Case]) -> None:
    # Re-recording the same outcome must not change a byte.
    for case in corpus:
        text = open(case.path, encoding="utf-8").read()
        assert v.update_verdict(text, case.expected, case.path) == text, case.name


# --- against the live kernel -------------------------------------------------------


@pytest.mark.kernel
def test_corpus_matches_kernel(kernel, corpus: list[v.Case]) -> None:
    results = [v.check_case_file(case.path) for case in corpus]
    table = v.mismatch_table(results)
    bad = sum(not r.ok for r in results)
    assert not bad, f"{bad} of {len(results)} cases differ from the kernel:\n{table}"


UNRECORDED = """\
# A fresh case: reading r0 before writing it.
-- asm
exit   # nothing else
-- prog_type
socket_filter
"""


@pytest.mark.kernel
def test_record_then_check(kernel, tmp_path) -> None:
    path = tmp_path / "fresh.case"
    path.write_text(UNRECORDED)
    out = io.StringIO()
    assert v.record_command([str(tmp_path)], out) == 0, out.getvalue()
    assert path.read_text() == UNRECORDED + "-- verdict\nreject\n-- error\nR0 !read_ok\n-- errno\nEACCES\n"
    assert "NEW" in out.getvalue() and "was: not recorded" in out.getvalue()

    # Recording again changes nothing; checking agrees.
    out = io.StringIO()
    assert v.record_command([str(path)], out) == 0
    assert "0 changed, 1 unchanged, 0 failed" in out.getvalue()
    assert v.check_command([str(path)], io.StringIO()) == 0

    # A wrong recorded verdict is reported in a table, with exit status 1 ...
    path.write_text(v.update_verdict(path.read_text(), v.Outcome(v.ACCEPT)))
    out = io.StringIO()
    assert v.check_command([str(path)], out) == 1
    assert "fresh.case" in out.getvalue() and "accept" in out.getvalue()
    assert "reject EACCES: R0 !read_ok" in out.getvalue()
    # ... and recording repairs it.
    assert v.record_command([str(path)], io.StringIO()) == 0
    assert path.read_text().endswith("-- verdict\nreject\n-- error\nR0 !read_ok\n-- errno\nEACCES\n")


@pytest.mark.kernel
def test_record_keeps_a_corpus_file_byte_identical(kernel, corpus: list[v.Case], tmp_path) -> None:
    for name in ("map-lookup-null-checked", "stack-write-off-520", "enc-exit-reserved-dst"):
        source = os.path.join(v.CORPUS_DIR, name + ".case")
        copy = tmp_path / (name + ".case")
        shutil.copyfile(source, copy)
        assert v.record_command([str(copy)], io.StringIO()) == 0
        assert copy.read_bytes() == open(source, "rb").read()


@pytest.mark.kernel
def test_failures_are_reported_not_raised(kernel, tmp_path) -> None:
    (tmp_path / "a-bad-format.case").write_text("-- asm\nexit\n-- prog_type\nnot_a_type\n")
    (tmp_path / "b-bad-asm.case").write_text("-- asm\nfrobnicate\n-- prog_type\nxdp\n")
    (tmp_path / "c-bad-map.case").write_text(
        "-- asm\nmov %r0, 0\nexit\n-- prog_type\nxdp\n-- maps\narray key_size=4 value_size=0 max_entries=1\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    out = io.StringIO()
    assert v.record_command([str(tmp_path)], out) == 1
    text = out.getvalue()
    assert "a-bad-format.case:4: unknown program type 'not_a_type'" in text
    assert "b-bad-asm.case:2:" in text
    assert "c-bad-map.case: kernel setup failed" in text
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written
    out = io.StringIO()
    assert v.check_command([str(tmp_path)], out) == 1
    assert out.getvalue().count("ERROR") == 3


def test_commands_without_cases(tmp_path) -> None:
    out = io.StringIO()
    assert v.check_command([str(tmp_path)], out) == 2
    assert "no .case files" in out.getvalue()
