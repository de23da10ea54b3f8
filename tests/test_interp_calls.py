"""bpf-to-bpf calls, frames and stacks, helper calls, callx, the instruction
budget and tracing."""

from __future__ import annotations

import pytest

from ebpfvm.errors import BudgetExhausted, CallDepthExceeded, MemoryFault, UnknownHelper
from ebpfvm.helpers import HelperEnv, HelperRegistry, StepClock, default_registry
from ebpfvm.interp import Interpreter, TraceEntry, UnsupportedInstruction, format_trace, run
from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, Instruction, JmpOp, Size
from ebpfvm.memory import MEM_BASE, STACK_SIZE, stack_frame_base

ADD, SUB = AluOp.ADD, AluOp.SUB


def prog(*items) -> list[Instruction]:
    return b.flatten(items)


# -- local calls ---------------------------------------------------------------------
def test_call_passes_arguments_and_preserves_r6_to_r9() -> None:
    program = prog(
        *[b.mov64_imm(r, r) for r in range(1, 10)],
        b.call_local(2),                       # 9 -> 12
        b.mov64_reg(1, 0),
        b.exit_insn(),                          # 11
        b.mov64_reg(0, 1), *[b.alu64_reg(ADD, 0, r) for r in range(2, 6)],   # 12..16: r0 = r1+..+r5
        *[b.mov64_imm(r, -1) for r in range(1, 10)],                         # clobber everything
        b.exit_insn(),
    )
    result = run(program)
    assert result.r0 == 15
    assert result.regs[6:10] == (6, 7, 8, 9)
    # r1-r5 keep the caller's values (the kernel interpreter's behaviour), r1 then overwritten.
    assert result.regs[1:6] == (15, 2, 3, 4, 5)


def _recursion(depth: int) -> list[Instruction]:
    """f(n) = n == 0 ? 0 : f(n - 1) + 1, called as f(depth)."""
    return prog(
        b.mov64_imm(1, depth),
        b.call_local(1),                         # 1 -> 3
        b.exit_insn(),
        b.jmp_imm(JmpOp.JEQ, 1, 0, 4),           # 3 -> 8
        b.alu64_imm(SUB, 1, 1),
        b.call_local(-3),                        # 5 -> 3
        b.alu64_imm(ADD, 0, 1),
        b.exit_insn(),
        b.mov64_imm(0, 0),                       # 8
        b.exit_insn(),
    )


def test_eight_frames_are_allowed() -> None:
    assert run(_recursion(6)).r0 == 6  # frames 0 (main) .. 7


def test_ninth_frame_raises_call_depth_exceeded() -> None:
    with pytest.raises(CallDepthExceeded) as info:
        run(_recursion(7))
    assert (info.value.pc, info.value.limit) == (5, 8)


def test_each_frame_has_a_fresh_stack() -> None:
    program = prog(
        b.st(Size.DW, 10, -8, 111),              # caller's slot
        b.mov64_reg(1, 10),                      # pass a pointer to the caller's stack
        b.call_local(4),                         # 2 -> 7
        b.ldx(Size.DW, 3, 10, -8),               # caller's slot is untouched
        b.alu64_reg(ADD, 0, 3),
        b.call_local(1),                         # 5 -> 7 again: its stack is zeroed again
        b.exit_insn(),
        b.ldx(Size.DW, 0, 10, -8),               # 7: callee's slot starts at 0
        b.ldx(Size.DW, 4, 1, -8),                # reads the caller's slot through r1
        b.alu64_reg(ADD, 0, 4),
        b.st(Size.DW, 10, -8, 1000),             # callee's own slot
        b.mov64_reg(5, 10),
        b.exit_insn(),
    )
    result = run(program)
    # first call: 0 + 111; back in main: + 111; second call: 0 + 111 -> r0 = 111
    assert result.r0 == 111


def test_callee_r10_is_a_different_frame() -> None:
    program = prog(b.call_local(1), b.exit_insn(), b.mov64_reg(0, 10), b.exit_insn())
    assert run(program).r0 == stack_frame_base(1) + STACK_SIZE


def test_callee_stack_is_unmapped_after_return() -> None:
    program = prog(b.call_local(2), b.ldx(Size.DW, 0, 0, -8), b.exit_insn(),
                   b.mov64_reg(0, 10), b.exit_insn())
    with pytest.raises(MemoryFault) as info:
        run(program)
    assert info.value.address == stack_frame_base(1) + STACK_SIZE - 8


def test_kfunc_call_is_unsupported() -> None:
    with pytest.raises(UnsupportedInstruction):
        run([Instruction(0x85, 0, 2, 0, 1234), b.exit_insn()])


# -- helpers -------------------------------------------------------------------------
def test_ktime_uses_the_injected_clock() -> None:
    program = prog(b.call_helper(5), b.mov64_reg(6, 0), b.call_helper(5), b.alu64_reg(SUB, 0, 6), b.exit_insn())
    env = HelperEnv(clock=StepClock(start=1_000, step=250))
    assert run(program, env=env).r0 == 250


def test_prandom_is_reproducible_with_a_seed() -> None:
    program = prog(b.call_helper(7), b.mov64_reg(6, 0), b.call_helper(7), b.alu64_imm(AluOp.LSH, 0, 32),
                   b.alu64_reg(AluOp.OR, 0, 6), b.exit_insn())
    first = run(program, env=HelperEnv(seed=42)).r0
    assert first == run(program, env=HelperEnv(seed=42)).r0
    assert first != run(program, env=HelperEnv(seed=43)).r0
    assert first >> 32 <= 0xFFFF_FFFF and first & 0xFFFF_FFFF <= 0xFFFF_FFFF


def test_smp_processor_id_is_configurable() -> None:
    program = prog(b.call_helper(8), b.exit_insn())
    assert run(program).r0 == 0
    assert run(program, env=HelperEnv(cpu_id=3)).r0 == 3


def test_custom_helper_gets_arguments_and_memory() -> None:
    calls = []

    def checksum(machine, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        calls.append((machine.pc, r3, r4, r5))
        return sum(machine.memory.read_bytes(r1, r2, machine.pc)) - 1

    registry = default_registry()
    registry.register(1000, checksum, name="test_checksum")
    program = prog(b.mov64_imm(3, 3), b.mov64_imm(4, 4), b.mov64_imm(5, 5), b.call_helper(1000), b.exit_insn())
    result = run(program, mem=b"\x01\x02\x03", helpers=registry)
    assert result.r0 == 5
    assert calls == [(3, 3, 4, 5)]
    assert result.regs[1:6] == (MEM_BASE, 3, 3, 4, 5)  # r1-r5 are not clobbered


def test_helper_result_is_taken_modulo_2_64() -> None:
    registry = HelperRegistry()
    registry.register(1, lambda m, *args: -1)
    assert run(prog(b.call_helper(1), b.exit_insn()), helpers=registry).r0 == 2**64 - 1


def test_unknown_helper_faults_when_called() -> None:
    with pytest.raises(UnknownHelper) as info:
        run(prog(b.mov64_imm(0, 0), b.call_helper(9999), b.exit_insn()))
    assert (info.value.pc, info.value.helper_id) == (1, 9999)
    # an empty registry knows nothing, not even the defaults
    with pytest.raises(UnknownHelper):
        run(prog(b.call_helper(5), b.exit_insn()), helpers=HelperRegistry())
    # an unknown helper that is never called is fine
    assert run(prog(b.ja(1), b.call_helper(9999), b.exit_insn())).r0 == 0


def test_callx_calls_the_helper_named_by_a_register() -> None:
    program = prog(b.mov64_imm(2, 8), b.callx(2), b.exit_insn())
    assert run(program, env=HelperEnv(cpu_id=5)).r0 == 5
    with pytest.raises(UnknownHelper) as info:
        run(prog(b.mov64_imm(2, 777), b.callx(2), b.exit_insn()))
    assert (info.value.pc, info.value.helper_id) == (1, 777)


# -- budget --------------------------------------------------------------------------
def test_budget_exhausted_on_infinite_loop() -> None:
    with pytest.raises(BudgetExhausted) as info:
        run(prog(b.mov64_imm(0, 0), b.ja(-1)), budget=1000)
    fault = info.value
    assert (fault.budget, fault.pc, fault.executed) == (1000, 1, 1000)


def test_budget_is_inclusive() -> None:
    program = prog(b.mov64_imm(0, 1), b.mov64_imm(0, 2), b.exit_insn())
    assert run(program, budget=3).executed == 3
    with pytest.raises(BudgetExhausted) as info:
        run(program, budget=2)
    assert info.value.pc == 2


def test_interpreter_can_be_rerun() -> None:
    interpreter = Interpreter(prog(b.ldx(Size.B, 0, 1), b.st(Size.B, 1, 0, 0xEE), b.exit_insn()))
    assert interpreter.run(b"\x05").r0 == 5
    second = interpreter.run(b"\x07\x08")
    assert (second.r0, second.mem) == (7, b"\xee\x08")


# -- tracing -------------------------------------------------------------------------
def test_trace_records_every_step() -> None:
    program = prog(b.mov64_imm(0, 1), b.call_local(1), b.exit_insn(), b.alu64_imm(ADD, 0, 2), b.exit_insn())
    result = run(program, trace=True)
    assert result.r0 == 3
    assert [(e.step, e.pc, e.depth) for e in result.trace] == [(0, 0, 0), (1, 1, 0), (2, 3, 1), (3, 4, 1),
                                                              (4, 2, 0)]
    assert len(result.trace) == result.executed
    assert result.trace[0].regs[0] == 1 and result.trace[2].regs[0] == 3
    assert result.trace[3].insn == program[4]
    text = result.format_trace(program)
    assert len(text.splitlines()) == 5
    assert "r0=0x1" in text.splitlines()[0]
    assert format_trace(result.trace, program) == text


def test_trace_to_a_callable() -> None:
    seen: list[TraceEntry] = []
    result = run(prog(b.mov64_imm(0, 4), b.exit_insn()), trace=seen.append)
    assert result.trace is None
    assert [e.pc for e in seen] == [0, 1]


def test_fault_carries_the_trace_so_far() -> None:
    with pytest.raises(MemoryFault) as info:
        run(prog(b.mov64_imm(0, 1), b.mov64_imm(2, 0), b.ldx(Size.B, 0, 2), b.exit_insn()), trace=True)
    assert [e.pc for e in info.value.trace] == [0, 1]
    assert info.value.executed == 2


def test_untraced_run_has_no_trace() -> None:
    assert run(prog(b.exit_insn())).trace is None
