"""Unit tests of the verifier engine (state, transfer, checks, explore, api),
one rule each, plus the soundness property against the interpreter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from ebpfvm import run
from ebpfvm.asm import assemble
from ebpfvm.conformance.strategies import MEM_SIZE, input_memory, kernel_safe_programs
from ebpfvm.kernel.execute import wrap_for_kernel
from ebpfvm.maps.definition import MapDefinition
from ebpfvm.program import Program
from ebpfvm.verifier import verify

ARRAY = MapDefinition(name="a", map_type="array", key_size=4, value_size=8, max_entries=4)


def check(text: str, prog_type: str = "socket_filter", maps=(), **kw):
    p = assemble(text)
    program = Program(p.instructions, prog_type=prog_type, maps=list(maps))
    return verify(program, prog_type=prog_type, **kw)


def rejects(text: str, message: str, **kw) -> None:
    result = check(text, **kw)
    assert result.verdict == "reject", result.log
    assert result.error.message == message, result.log


def accepts(text: str, **kw) -> None:
    result = check(text, **kw)
    assert result.verdict == "accept", result.log


def test_uninitialised_register():
    rejects("exit", "R0 !read_ok")
    rejects("mov %r0, %r5\nexit", "R5 !read_ok")


def test_frame_pointer_read_only():
    rejects("mov %r10, 1\nmov %r0, 0\nexit", "frame pointer is read only")


def test_div_by_zero_immediate_but_not_register():
    rejects("mov %r0, 1\ndiv %r0, 0\nexit", "div by zero")
    accepts("mov %r0, 1\nmov %r1, 0\ndiv %r0, %r1\nexit")


def test_stack_spill_and_fill_keep_pointer():
    accepts("stxdw [%r10-8], %r1\nldxdw %r2, [%r10-8]\nldxw %r0, [%r2+0]\nexit")
    rejects("stxw [%r10-8], %r1\nmov %r0, 0\nexit", "invalid size of register spill")


def test_stack_bounds_and_alignment():
    rejects("stdw [%r10-520], 1\nmov %r0, 0\nexit", "invalid write to stack R10 off=-520 size=8")
    rejects("stw [%r10-6], 1\nmov %r0, 0\nexit", "misaligned stack access off 0+0+-6 size 4")


def test_scalar_deref():
    rejects("mov %r1, 0\nldxw %r0, [%r1+0]\nexit", "R1 invalid mem access 'scalar'")


def test_ctx_access_per_prog_type():
    accepts("ldxw %r0, [%r1+0]\nexit")  # __sk_buff->len
    rejects("ldxw %r0, [%r1+1000]\nexit", "invalid bpf_context access off=1000 size=4")
    rejects("add %r1, 4\nldxw %r0, [%r1+0]\nexit", "dereference of modified ctx ptr R1 off=4 disallowed")


MAP_LOOKUP = """
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_fd 0
call 1
"""


def test_map_value_null_check_and_bounds():
    # key 0 is known and below max_entries: the lookup cannot fail (as root); key 4 may
    out_of_range = MAP_LOOKUP.replace("stw [%r10-4], 0", "stw [%r10-4], 4")
    rejects(out_of_range + "ldxw %r0, [%r0+0]\nexit", "R0 invalid mem access 'map_value_or_null'", maps=[ARRAY])
    accepts(MAP_LOOKUP + "ldxw %r0, [%r0+0]\nexit", maps=[ARRAY])
    accepts(MAP_LOOKUP + "jeq %r0, 0, out\nldxw %r0, [%r0+4]\nout:\nmov %r0, 0\nexit", maps=[ARRAY])
    rejects(MAP_LOOKUP + "jeq %r0, 0, out\nldxw %r0, [%r0+8]\nout:\nmov %r0, 0\nexit",
            "R0 min value is outside of the allowed memory range", maps=[ARRAY])


def test_map_value_variable_offset_needs_bounds():
    body = MAP_LOOKUP + "jeq %r0, 0, out\nmov %r1, %r6\n"
    rejects(MAP_LOOKUP + "mov %r6, %r0\njeq %r6, 0, out\nldxdw %r1, [%r6+0]\nadd %r6, %r1\nldxb %r0, [%r6+0]\n"
            "out:\nmov %r0, 0\nexit",
            "math between map_value pointer and register with unbounded min value is not allowed", maps=[ARRAY])
    accepts(MAP_LOOKUP + "mov %r6, %r0\njeq %r6, 0, out\nldxdw %r1, [%r6+0]\nand %r1, 7\nadd %r6, %r1\n"
            "ldxb %r0, [%r6+0]\nout:\nmov %r0, 0\nexit", maps=[ARRAY])
    del body


PKT = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r0, 1
mov %r4, %r2
add %r4, 14
"""


@pytest.mark.parametrize("jump", ["jgt %r4, %r3, out", "jlt %r3, %r4, out"])
def test_packet_range_from_data_end(jump):
    accepts(PKT + jump + "\nldxb %r0, [%r2+13]\nout:\nexit", prog_type="xdp")
    rejects(PKT + jump + "\nldxb %r0, [%r2+14]\nout:\nexit", "R2 offset is outside of the packet", prog_type="xdp")


def test_packet_without_check():
    rejects(PKT + "ldxb %r0, [%r2+0]\nexit", "R2 offset is outside of the packet", prog_type="xdp")


def test_pointer_arithmetic_rules():
    rejects("mul %r1, 2\nmov %r0, 0\nexit", "R1 pointer arithmetic with *= operator prohibited")
    rejects("and %r1, 2\nmov %r0, 0\nexit", "R1 bitwise operator &= on pointer prohibited")
    rejects("add32 %r1, 2\nmov %r0, 0\nexit", "R1 32-bit pointer arithmetic prohibited")
    rejects("mov %r2, %r10\nadd %r1, %r2\nmov %r0, 0\nexit", "R1 pointer += pointer prohibited")


def test_dead_branch_not_explored():
    accepts("mov %r1, 1\njeq %r1, 1, ok\nexit\nok:\nmov %r0, 0\nexit")


def test_bounded_loop_accepted_and_infinite_loop_detected():
    accepts("mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, 1\nsub %r1, 1\njne %r1, 0, loop\nexit")
    rejects("mov %r0, 0\nloop:\njeq %r0, 1, out\nja loop\nout:\nexit", "infinite loop detected at insn 1")


def test_helper_checks():
    rejects("call 999999\nmov %r0, 0\nexit", "invalid func unknown#999999")
    rejects("mov %r1, 0\nmov %r2, 0\ncall 1\nmov %r0, 0\nexit", "R1 type=scalar expected=map_ptr")
    rejects("call 23\nmov %r0, 0\nexit", "program of this type cannot use helper bpf_redirect#23")


def test_caller_saved_registers_clobbered():
    rejects("call 5\nmov %r0, %r1\nexit", "R1 !read_ok")


def test_local_calls():
    accepts("mov %r1, 1\ncall local fn\nexit\nfn:\nmov %r0, %r1\nexit")
    rejects("call local fn\nexit\nfn:\nmov %r0, %r10\nadd %r0, -8\nstdw [%r0+0], 0\nexit",
            "cannot return stack pointer to the caller")


def test_return_range():
    rejects("mov %r0, 2\nexit", "At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]",
            prog_type="cgroup_skb")
    accepts("mov %r0, 1\nexit", prog_type="cgroup_skb")


def test_result_shape():
    result = check("mov %r0, 0\nexit")
    assert result.verdict == "accept" and result.error is None
    assert result.stats["processed_insns"] == 2
    assert result.log.strip().startswith("processed 2 insns (limit 1000000) max_states_per_insn")
    structural = check("mov %r0, 0")
    assert structural.verdict == "reject" and structural.error.message == "last insn is not an exit or jmp"


@settings(max_examples=40, deadline=None)
@given(program=kernel_safe_programs(), mem=input_memory())
def test_generated_programs_accepted_and_run_without_fault(program, mem):
    """Soundness: the kernel accepts these by construction; so must we, and
    an accepted program must run in the interpreter without a memory fault."""
    wrapped = wrap_for_kernel(program, MEM_SIZE)
    maps = [MapDefinition(name="mem", map_type="array", key_size=4, value_size=MEM_SIZE, max_entries=1),
            MapDefinition(name="res", map_type="array", key_size=4, value_size=8, max_entries=1)]
    result = verify(Program(wrapped.instructions, prog_type="xdp", maps=maps), prog_type="xdp")
    assert result.verdict == "accept", result.log
    run(program, mem=mem)  # raises MemoryFault / BudgetExhausted on a fault


# --- bpf_loop callbacks: verified in a new frame, R0 in [0, 1] ---------------------------

_LOOP = """
stdw [%r10-8], 0
mov %r1, 4
lddw %r2, func cb
mov %r3, %r10
add %r3, -8
mov %r4, 0
call 181
mov %r0, 0
exit
cb:
{body}
"""


def test_bpf_loop_callback_is_explored():
    accepts(_LOOP.format(body="ldxdw %r0, [%r2+0]\nmov %r0, 1\nexit"))
    rejects(_LOOP.format(body="mov %r0, %r5\nexit"), "R5 !read_ok")
    rejects(_LOOP.format(body="ldxdw %r0, [%r1+0]\nmov %r0, 0\nexit"), "R1 invalid mem access 'scalar'")
    rejects(_LOOP.format(body="mov %r0, 2\nexit"),
            "At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]")


def _loop_sum_variants():
    import dataclasses

    from ebpfvm.elf import load_object
    from ebpfvm.isa.instruction import Instruction

    obj = load_object("examples/loop_sum.o")
    program = obj.program("sum_squares")

    def variant(patch):
        insns = list(program.instructions)
        for pc, insn in patch.items():
            insns[pc] = insn
        return dataclasses.replace(obj, programs=(program.with_instructions(insns),))

    # the callback starts at pc 37: r1 = index (scalar), r2 = ctx (caller stack)
    return obj, {
        "range": variant({44: Instruction(0xB4, 0, 0, 0, 2)}),        # w0 = 2
        "scalar_deref": variant({38: Instruction(0x79, 3, 1, 0, 0)}),  # r3 = *(u64 *)(r1 + 0)
        "uninit": variant({37: Instruction(0x2F, 1, 5, 0, 0)}),        # r1 *= r5
    }


def _verify_object(obj):
    return verify(obj.program("sum_squares"), prog_type="socket_filter")


def test_loop_sum_still_verifies():
    obj, _ = _loop_sum_variants()
    result = _verify_object(obj)
    assert result.verdict == "accept", result.log


@pytest.mark.parametrize("case", ["range", "scalar_deref", "uninit"])
def test_bad_bpf_loop_callback_matches_kernel(case):
    from kernel_support import require_kernel

    from ebpfvm.kernel import KernelVerifierError
    from ebpfvm.kernel.objects import open_object

    _, variants = _loop_sum_variants()
    obj = variants[case]
    result = _verify_object(obj)
    assert result.verdict == "reject", result.log
    require_kernel()
    with pytest.raises(KernelVerifierError) as info:
        with open_object(obj) as loaded:
            loaded.load("sum_squares")
    assert result.error.message == info.value.error_line


def test_a_variable_offset_stack_load_has_the_loads_width() -> None:
    """``ldxb`` at a variable stack offset gives a byte, [0, 255]
    (coerce_reg_to_size), so ``if r0 > 255`` is decided: 9 instructions and
    this annotation, as the 6.18 kernel logs them."""
    program = assemble("ldxw %r1, [%r1+0]\nand %r1, 7\nstdw [%r10-8], 5\nmov %r2, %r10\nadd %r2, -8\n"
                       "add %r2, %r1\nldxb %r0, [%r2+0]\njgt %r0, 255, +1\nexit\nmov %r0, 0\nexit")
    result = verify(program, prog_type="socket_filter", log_level=2)
    assert result.stats["processed_insns"] == 9
    assert ("6: (71) r0 = *(u8 *)(r2 +0)           ; R0=scalar(smin=smin32=0,smax=umax=smax32=umax32=255,"
            "var_off=(0x0; 0xff)) R2=fp(off=-8,smin=smin32=0,smax=umax=smax32=umax32=7,var_off=(0x0; 0x7)) "
            "fp-8=5\n") in result.log


@pytest.mark.parametrize("opcode,dst,src,off,reg", [(0x0F, 1, 11, 0, 11), (0x0F, 11, 1, 0, 11),
                                                    (0x61, 12, 1, 0, 12), (0x7B, 10, 13, -8, 13)])
def test_a_register_beyond_r10_is_the_kernels_rejection(opcode: int, dst: int, src: int, off: int,
                                                        reg: int) -> None:
    """Reached with a register that does not exist: ``R11 is invalid``
    (the 6.18 kernel's line, EINVAL), not a crash of the precision tracking."""
    from ebpfvm.isa.instruction import Instruction
    program = Program([Instruction(0xB7, 0, 0, 0, 0), Instruction(opcode, dst, src, off, 0),
                       Instruction(0x95, 0, 0, 0, 0)])
    error = verify(program, prog_type="socket_filter").error
    assert (error.insn, error.message, error.errno) == (1, f"R{reg} is invalid", "EINVAL")
