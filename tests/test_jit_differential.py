"""Hypothesis: the JIT (checked and trusted, O2) against the interpreter on
programs the kernel verifier accepts by construction: same r0, same input
memory afterwards, same executed count (checked mode). A smaller share of
examples also runs in the kernel (``run_in_kernel``; skipped without bpf(2))
and must give the JIT's r0 and memory.

Compile time per example is measured by ``test_compile_time_is_small``;
about 5-15 ms for these 30-150 instruction programs, so 200 examples stay
within a few seconds.
"""

from __future__ import annotations

from ebpfvm.conformance.strategies import input_memory, kernel_safe_programs
from ebpfvm.jit import compile
from fuzz_budget import examples
from hypothesis import given, settings
from kernel_support import require_kernel

from ebpfvm.interp import run
from ebpfvm.kernel.execute import run_in_kernel
from ebpfvm.program import Program


@settings(max_examples=200)
@given(program=kernel_safe_programs(), mem=input_memory())
def test_jit_matches_interpreter(program: Program, mem: bytes) -> None:
    want = run(program, mem=mem, budget=1_000_000)
    checked = compile(program).run(mem, budget=1_000_000)
    assert (checked.r0, checked.mem, checked.executed) == (want.r0, want.mem, want.executed)
    trusted = compile(program, mode="trusted").run(mem)
    assert (trusted.r0, trusted.mem) == (want.r0, want.mem)


@settings(max_examples=examples(40), deadline=None)
@given(program=kernel_safe_programs(), mem=input_memory())
def test_jit_matches_kernel(program: Program, mem: bytes) -> None:
    require_kernel()
    kernel = run_in_kernel(program, mem)
    assert kernel.verdict == "accepted", kernel.error_line or kernel.detail
    checked = compile(program).run(mem, budget=1_000_000)
    trusted = compile(program, mode="trusted").run(mem)
    assert (checked.r0, checked.mem) == (trusted.r0, trusted.mem) == (kernel.r0, kernel.mem)
