"""Inserting code keeps every branch on its original target."""

from __future__ import annotations

from ebpfvm import Program
from ebpfvm.isa import Instruction, branch_target, lddw_pair
from ebpfvm.rewrite import insert_instructions

MOV_R0_1 = Instruction(0xB7, 0, 0, 0, 1)
EXIT = Instruction(0x95)
NOP = Instruction(0xBF, 1, 1)  # mov r1, r1


def _targets(program: Program) -> dict[int, int]:
    found = {}
    for pc, insn in enumerate(program.instructions):
        target = branch_target(insn, pc)
        if target is not None:
            found[pc] = target
    return found


def test_branches_across_the_insertion_point_are_adjusted():
    # 0: jeq r0, 0, +2 -> 3 | 1: call local +3 -> 5 | 2: exit | 3: ja -4 -> 0 | 4: exit | 5: mov | 6: exit
    original = Program([Instruction(0x15, 0, 0, 2, 0), Instruction(0x85, 0, 1, 0, 3), EXIT,
                        Instruction(0x05, 0, 0, -4, 0), EXIT, MOV_R0_1, EXIT])
    patched = insert_instructions(original, 5, [NOP, NOP])
    assert len(patched) == 9
    assert _targets(patched) == {0: 3, 1: 7, 3: 0}
    assert patched[7] == MOV_R0_1
    patched.check()


def test_prologue_keeps_backward_jumps_to_the_original_first_instruction():
    original = Program([MOV_R0_1, Instruction(0x05, 0, 0, -2, 0), EXIT])  # ja -2 -> 0
    patched = insert_instructions(original, 0, [NOP, NOP, NOP])
    assert _targets(patched)[4] == 3


def test_gotol_and_function_references_are_adjusted():
    head, tail = lddw_pair(1, 2, src=4)  # lddw r1, func -> 0 + 1 + 2 = 3
    gotol = Instruction(0x06, 0, 0, 0, 2)  # gotol +2 -> 2 + 1 + 2 = 5
    original = Program([head, tail, gotol, EXIT, EXIT, EXIT])
    patched = insert_instructions(original, 3, [NOP])
    assert patched[0].imm == 3  # now points at 4, the original slot 3
    assert patched[2].imm == 3  # now points at 6, the original slot 5
