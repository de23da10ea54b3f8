"""JIT faults, budget, helper callbacks and the inttoptr/ptrtoint trap, each
against the interpreter's behaviour."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ebpfvm
from ebpfvm.errors import BudgetExhausted, CallDepthExceeded, MemoryFault, ProgramFault, UnknownHelper
from ebpfvm.helpers.defaults import default_registry
from ebpfvm.helpers.registry import HelperRegistry
from ebpfvm.interp import Interpreter, run
from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, Size
from ebpfvm.jit import compile
from ebpfvm.program import Program

from benchmarks.programs import WORKLOADS


def _outcome(thunk):
    try:
        result = thunk()
    except ProgramFault as fault:
        return type(fault).__name__, str(fault), getattr(fault, "executed", None)
    return "ok", result.r0, result.mem


ASM_FAULTS = {
    "read past input": ("ldxw %r0, [%r1+62]\nexit", bytes(64)),
    "write before input": ("stb [%r1-1], 1\nexit", bytes(8)),
    "null pointer": ("mov %r0, 1\nadd %r0, 2\nldxdw %r0, [%r1+0]\nexit", b""),
    "below stack": ("mov %r0, 0\nstxdw [%r10-520], %r0\nexit", b""),
    "above stack": ("ldxb %r0, [%r10+0]\nexit", b""),
    "wild pointer": ("lddw %r2, 0x123456789abc\nldxh %r0, [%r2+3]\nexit", bytes(4)),
    "straddles end": ("mov %r0, 7\nldxdw %r0, [%r1+4]\nexit", bytes(8)),
    "atomic out of bounds": ("mov %r2, 1\nlock add [%r1+8], %r2\nexit", bytes(8)),
    "after a loop": ("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 100, loop\nldxb %r0, [%r1+0]\nexit", b""),
    "unknown helper": ("mov %r0, 1\ncall 100000\nexit", b""),
    "callx unknown": ("mov %r2, 99999\ncallx %r2\nexit", b""),
    "fell off": ("mov %r0, 1\njeq %r0, 2, out\nadd %r0, 1\nout:\nadd %r0, 2", b""),
}


@pytest.mark.parametrize("name", list(ASM_FAULTS))
def test_checked_faults_equal_the_interpreters(name: str) -> None:
    source, mem = ASM_FAULTS[name]
    program = ebpfvm.assemble(source)
    want = _outcome(lambda: run(program, mem=mem))
    got = _outcome(lambda: compile(program).run(mem))
    assert got == want
    assert want[0] != "ok"


def test_fault_in_a_callee_and_a_dangling_callee_stack_pointer() -> None:
    # The callee returns a pointer into its own frame; after the return that
    # frame is unmapped, so main's load faults naming the nearest region.
    program = Program([b.call_local(2), b.ldx(Size.DW, 0, 0, -8), b.exit_insn(),
                       b.mov64_reg(0, 10), b.exit_insn()])
    want = _outcome(lambda: run(program))
    assert want[0] == "MemoryFault"
    assert _outcome(lambda: compile(program).run()) == want
    # Inside the callee: reading the caller's frame works, overrunning it faults.
    program = Program([b.st(Size.DW, 10, -8, 41), b.mov64_reg(1, 10), b.call_local(2), b.exit_insn(),
                       b.exit_insn(),
                       b.ldx(Size.DW, 0, 1, -8), b.alu64_imm(AluOp.ADD, 0, 1), b.ldx(Size.DW, 2, 1, 0),
                       b.exit_insn()])
    program = Program([*program.instructions[:4], *program.instructions[5:]])
    want = _outcome(lambda: run(program))
    assert _outcome(lambda: compile(program).run()) == want


def test_call_depth_limit() -> None:
    program = ebpfvm.assemble("call local f\nexit\nf:\ncall local f\nexit")
    want = _outcome(lambda: run(program))
    assert want[0] == CallDepthExceeded.__name__
    assert _outcome(lambda: compile(program).run()) == want


def test_budget_exhausted_like_the_interpreter() -> None:
    program = ebpfvm.assemble("mov %r0, 0\nloop:\nadd %r0, 1\nja loop")
    for budget in (1, 2, 3, 10, 1001):
        want = _outcome(lambda: run(program, budget=budget))
        assert want[0] == BudgetExhausted.__name__
        assert _outcome(lambda: compile(program).run(budget=budget)) == want
    # A run that fits exactly, and one that is one instruction short.
    program = ebpfvm.assemble("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 10, loop\nexit")
    executed = run(program).executed
    assert compile(program).run(budget=executed).executed == executed
    with pytest.raises(BudgetExhausted):
        compile(program).run(budget=executed - 1)


def test_executed_matches_interpreter_on_workloads() -> None:
    for name in ("sieve-stack", "alu-mix"):
        w = WORKLOADS[name]()
        want = Interpreter(w.program).run(w.mem, budget=100_000_000)
        got = compile(w.program).run(w.mem, budget=100_000_000)
        assert (got.r0, got.executed, got.mem) == (want.r0, want.executed, want.mem)
        trusted = compile(w.program, mode="trusted").run(w.mem)
        assert (trusted.r0, trusted.executed) == (want.r0, None)


def test_inttoptr_trap_loop_heavy_program_at_o3() -> None:
    """llvmlite >= 0.49 warns that inttoptr/ptrtoint round trips may be
    miscompiled after loop optimisation. Our translation never creates a
    pointer from an integer (GEPs from real base pointers only); check that
    structurally and behaviourally on pointer-walking loops at O3."""
    sources = [
        # walk the input with a pointer register, sum and rewrite every byte
        """mov %r0, 0
           mov %r3, %r1
           add %r3, %r2
        loop:
           jge %r1, %r3, done
           ldxb %r4, [%r1+0]
           add %r0, %r4
           xor %r4, 0x5a
           stxb [%r1+0], %r4
           add %r1, 1
           ja loop
        done:
           exit""",
        # a pointer that moves between the stack and the input memory
        """mov %r6, 0
           mov %r0, 0
        again:
           mov %r7, %r10
           sub %r7, 64
           jset %r6, 1, use_stack
           mov %r7, %r1
        use_stack:
           mov %r8, %r6
           and %r8, 31
           add %r7, %r8
           ldxb %r9, [%r7+0]
           add %r9, %r6
           stxb [%r7+0], %r9
           add %r0, %r9
           mul %r0, 3
           add %r6, 1
           jlt %r6, 2000, again
           mov %r1, %r7
           sub %r1, %r10
           add %r0, %r1
           exit""",
    ]
    mem = bytes((i * 37 + 11) & 0xFF for i in range(64))
    for source in sources:
        program = ebpfvm.assemble(source)
        want = run(program, mem=mem, budget=10_000_000)
        for mode in ("checked", "trusted"):
            jit = compile(program, mode=mode, opt_level=3)
            assert "inttoptr" not in jit.optimized_ir and "ptrtoint" not in jit.optimized_ir
            got = jit.run(mem, budget=10_000_000)
            assert (got.r0, got.mem) == (want.r0, want.mem)
    primes = ebpfvm.assemble(open(__file__.replace("tests/test_jit_faults.py", "examples/asm/primes.asm")).read())
    assert compile(primes, opt_level=3).run().r0 == run(primes).r0 == 78


def test_helper_callback_that_raises() -> None:
    registry = HelperRegistry()

    def boom(machine, r1, r2, r3, r4, r5):
        raise ValueError(f"boom {r1}")

    def bad_pointer(machine, r1, r2, r3, r4, r5):
        return machine.memory.read(r1, 8, machine.pc)  # a ProgramFault from inside a helper

    def add(machine, r1, r2, r3, r4, r5):
        return r1 + r2 + machine.memory.read(r3, 1, machine.pc)

    registry.register(1000, boom, name="boom")
    registry.register(1001, bad_pointer, name="bad_pointer")
    registry.register(1002, add, name="add")
    raising = ebpfvm.assemble("mov %r6, 3\nmov %r1, 42\ncall 1000\nmov %r0, %r6\nexit")
    jit = compile(raising, helpers=registry)
    for _ in range(3):  # the process and the JIT survive, every time
        with pytest.raises(ValueError, match="boom 42"):
            jit.run()
    faulting = ebpfvm.assemble("mov %r1, 8\ncall 1001\nexit")
    want = _outcome(lambda: run(faulting, helpers=registry))
    assert want[0] == MemoryFault.__name__
    assert _outcome(lambda: compile(faulting, helpers=registry).run()) == want
    # A working helper reading the JIT's memory (input and stack) through the machine.
    ok = ebpfvm.assemble("stb [%r10-1], 9\nmov %r6, 5\nmov %r1, 1\nmov %r2, 2\nmov %r3, %r10\nsub %r3, 1\n"
                         "call 1002\nadd %r0, %r6\nexit")
    gc.collect()
    assert compile(ok, helpers=registry).run().r0 == run(ok, helpers=registry).r0 == 17
    rows = np.zeros((3, 4), dtype=np.uint8)
    assert list(compile(ok, helpers=registry).run_many(rows)) == [17, 17, 17]


def test_default_helpers_and_unknown_helper() -> None:
    program = ebpfvm.assemble("mov %r6, 6\ncall 5\nmov %r0, %r6\nexit")  # bpf_ktime_get_ns
    assert compile(program, helpers=default_registry()).run().r0 == 6
    with pytest.raises(UnknownHelper):
        compile(ebpfvm.assemble("call 100000\nexit")).run()


def test_run_many_fault_names_the_row() -> None:
    program = ebpfvm.assemble("ldxb %r0, [%r1+0]\njeq %r0, 0, bad\nexit\nbad:\nldxb %r0, [%r1+100]\nexit")
    rows = np.array([[1, 0], [2, 0], [0, 0]], dtype=np.uint8)
    with pytest.raises(MemoryFault) as info:
        compile(program).run_many(rows)
    assert info.value.index == 2
    assert str(info.value) == str(pytest.raises(MemoryFault, run, program, mem=b"\0\0").value)


def test_trusted_mode_has_no_budget_but_same_results() -> None:
    program = ebpfvm.assemble("mov %r0, 0\nloop:\nadd %r0, 3\njlt %r0, 3000, loop\nexit")
    result = compile(program, mode="trusted").run(budget=5)
    assert (result.r0, result.executed) == (3000, None)
    with pytest.raises(BudgetExhausted):
        compile(program).run(budget=5)
