"""`ebpfvm run --engine jit`, `ebpfvm jit --emit`, `conformance --engine jit`."""

from __future__ import annotations

import io
from pathlib import Path

from ebpfvm.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRIMES = str(ROOT / "examples" / "asm" / "primes.asm")


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_run_engine_jit_matches_interp() -> None:
    assert _run("run", PRIMES, "--engine", "jit")[:2] == _run("run", PRIMES)[:2] == (0, "r0 = 0x4e (78)\n")
    code, out, _ = _run("run", PRIMES, "--engine", "jit", "--stats")
    assert code == 0 and "executed 9065 instructions" in out


def test_run_engine_jit_fault_and_trace(tmp_path: Path) -> None:
    src = tmp_path / "bad.asm"
    src.write_text("ldxdw %r0, [%r1+0]\nexit\n")
    assert _run("run", str(src), "--engine", "jit")[::2] == _run("run", str(src))[::2]
    assert _run("run", str(src), "--engine", "jit")[0] == 1
    assert _run("run", PRIMES, "--engine", "jit", "--trace")[0] == 2


def test_emit_llvm_and_asm() -> None:
    code, out, _ = _run("jit", PRIMES, "--emit", "llvm")
    assert code == 0 and "bpf_main" in out and "define i64" in out and "inttoptr" not in out
    code, out, _ = _run("jit", PRIMES, "--emit", "asm", "--mode", "trusted", "-O", "3")
    assert code == 0 and "bpf_main:" in out


def test_conformance_engine_jit_on_corpus() -> None:
    code, out, _ = _run("conformance", str(ROOT / "conformance" / "cases"), "--engine", "jit")
    assert code == 0, [line for line in out.splitlines() if line.startswith("FAIL")]
    assert " 0 failed" in out.splitlines()[-1]


def test_shared_suite_passes_on_the_jit() -> None:
    import pytest
    from shared_suite import SHARED_SUITE

    if not (SHARED_SUITE / "tests").is_dir():
        pytest.skip(f"bpf_conformance suite not found at {SHARED_SUITE}")
    code, out, _ = _run("conformance", str(SHARED_SUITE / "tests"), "--engine", "jit")
    assert code == 0, [line for line in out.splitlines() if line.startswith("FAIL")]
