"""Differential testing: generated programs run in the kernel and in the interpreter.

The programs come from ``ebpfvm.conformance.strategies``, built so that the
kernel's verifier accepts them. A disagreement in r0 or in the output memory
fails with the (shrunk) program printed in both assembler dialects, ready to
paste into a ``.data`` case. Without a kernel the same strategies still check
interpreter-only properties (tests/test_generated_programs.py).
"""

from __future__ import annotations

import warnings

from hypothesis import given, settings

from ebpfvm import disassemble, run
from ebpfvm.conformance.strategies import input_memory, kernel_safe_programs
from ebpfvm.kernel.constants import BPF_F_TEST_REG_INVARIANTS
from ebpfvm.kernel.execute import run_in_kernel

from fuzz_budget import examples
from kernel_support import require_kernel


class KernelFinding(UserWarning):
    """The kernel misbehaved on a program it should handle: worth reporting upstream."""


def _listing(program) -> str:
    return ("-- asm\n" + disassemble(program, style="asm")
            + "\nkernel style:\n" + disassemble(program, style="kernel"))


@settings(max_examples=examples(300))
@given(program=kernel_safe_programs(), mem=input_memory())
def test_interpreter_agrees_with_kernel(program, mem):
    require_kernel()
    kernel = run_in_kernel(program, mem)
    assert kernel.verdict == "accepted", (
        f"kernel {kernel.verdict} a generated program: {kernel.error_line or kernel.detail}\n{_listing(program)}")
    ours = run(program, mem=mem)
    assert (ours.r0, ours.mem) == (kernel.r0, kernel.mem), (
        f"interpreter r0={ours.r0:#x} kernel r0={kernel.r0:#x}; "
        f"mem equal: {ours.mem == kernel.mem}\n{_listing(program)}")


@settings(max_examples=examples(100))
@given(program=kernel_safe_programs(), mem=input_memory())
def test_kernel_register_invariants_hold(program, mem):
    """BPF_F_TEST_REG_INVARIANTS makes the kernel reject a program instead of
    silently continuing when its own register bounds become inconsistent."""
    require_kernel()
    kernel = run_in_kernel(program, mem, prog_flags=BPF_F_TEST_REG_INVARIANTS)
    if "INVARIANTS VIOLATION" in kernel.log:
        message = f"kernel register-bounds invariant violated: {kernel.error_line}\n{_listing(program)}"
        print(f"KERNEL FINDING: {message}")
        warnings.warn(KernelFinding(message))
        return
    assert kernel.verdict == "accepted", f"{kernel.error_line or kernel.detail}\n{_listing(program)}"


def test_a_divergence_would_be_reported_with_both_listings():
    """The failure message carries pasteable assembly (checked on a fixed program)."""
    from ebpfvm import assemble

    program = assemble("mov %r0, 7\nexit\n")
    text = _listing(program)
    assert "mov %r0, 7" in text and "r0 = 7" in text
