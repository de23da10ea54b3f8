"""Smoke test of the comparison benchmark's workloads (no timing): each BPF
program returns its expected r0 on the interpreter, and the C version in
benchmarks/native/ returns the same r0 on the same input when gcc is here."""

from __future__ import annotations

import pytest

from benchmarks.programs import COMPARE_WORKLOADS
from benchmarks.suite import build_native, gcc_path, native_run
from ebpfvm.interp import Interpreter

NAMES = sorted(COMPARE_WORKLOADS)


@pytest.mark.parametrize("name", NAMES)
def test_interpreter_gives_expected_r0(name):
    w = COMPARE_WORKLOADS[name]()
    res = Interpreter(w.program).run(w.mem, budget=10_000_000)
    assert res.r0 == w.expected_r0
    # Running again on the memory the run left gives the same r0 (repeat runs
    # in the kernel and the JIT's in-place run_many rely on it).
    again = Interpreter(w.program).run(res.mem, budget=10_000_000)
    assert again.r0 == w.expected_r0


@pytest.mark.skipif(gcc_path() is None, reason="gcc not installed")
@pytest.mark.parametrize("name", NAMES)
def test_native_matches(name, tmp_path):
    w = COMPARE_WORKLOADS[name]()
    assert w.native
    assert native_run(build_native(w.native, tmp_path), w.mem) == w.expected_r0
