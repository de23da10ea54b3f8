"""Properties of the generated kernel-safe programs that need no kernel."""

from __future__ import annotations

from hypothesis import given, settings

from ebpfvm import assemble, disassemble, run
from ebpfvm.conformance.strategies import MEM_SIZE, input_memory, kernel_safe_programs


@settings(max_examples=200)
@given(program=kernel_safe_programs(), mem=input_memory())
def test_generated_programs_run_without_faults_and_deterministically(program, mem):
    first = run(program, mem=mem)
    second = run(program, mem=mem)
    assert (first.r0, first.mem, first.executed) == (second.r0, second.mem, second.executed)
    assert len(first.mem) == MEM_SIZE


@settings(max_examples=100)
@given(program=kernel_safe_programs())
def test_generated_programs_survive_the_assembler_round_trip(program):
    assert assemble(disassemble(program)).to_bytes() == program.to_bytes()
