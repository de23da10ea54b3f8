"""The disassemblers: the asm dialect and the kernel verifier log's wording."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm import AssemblyError, Program
from ebpfvm.asm import assemble, disassemble, format_instruction, format_instruction_kernel_log_line
from ebpfvm.helpers.ids import HELPER_NAMES, helper_id, helper_name
from ebpfvm.isa import Instruction

# -- asm style ---------------------------------------------------------------------


def test_disassembly_keeps_the_source_labels_and_prints_lddw_once():
    source = ("mov %r0, 0\n"
              "lddw %r1, 0x1122334455667788\n"
              "loop:\n"
              "add %r0, 1\n"
              "jlt %r0, %r1, loop\n"
              "call local helper_fn\n"
              "exit\n"
              "helper_fn:\n"
              "mov %r0, -1\n"
              "exit\n")
    assert disassemble(assemble(source)) == source


def test_targets_without_a_name_get_generated_labels():
    program = Program([Instruction(0x15, 1, 0, 1, 0), Instruction(0xB7, 0, 0, 0, 1), Instruction(0x95)])
    assert disassemble(program) == "jeq %r1, 0, L2\nmov %r0, 1\nL2:\nexit\n"


def test_generated_labels_avoid_the_programs_own_names():
    program = Program([Instruction(0x05, off=1), Instruction(0x95), Instruction(0x95)], labels={1: "L2"})
    assert disassemble(program) == "ja L2_1\nL2:\nexit\nL2_1:\nexit\n"


def test_unusable_label_names_are_replaced():
    program = Program([Instruction(0x05, off=0), Instruction(0x95)], labels={1: "not a name", 0: "9lives"})
    assert disassemble(program) == "ja L1\nL1:\nexit\n"


def test_memory_operands_and_immediates():
    text = "ldxw %r0, [%r1]\nstxdw [%r10-8], %r0\nstb [%r1+4], -1\nmov32 %r0, -2147483648\nexit\n"
    assert disassemble(assemble(text)) == text


def test_lddw_pseudo_sources_print_with_their_keyword():
    text = ("lddw %r1, map_fd 3\nlddw %r2, map_value 4, 16\nlddw %r3, btf_id 9\nlddw %r4, func f\n"
            "lddw %r5, map_idx 0\nlddw %r6, map_idx_value 1, 8\nexit\nf:\nexit\n")
    assert disassemble(assemble(text)) == text


def test_format_instruction_prints_offsets_unless_the_program_names_the_target():
    bare = Program([Instruction(0x05, off=1), Instruction(0x95), Instruction(0x95)])
    assert format_instruction(bare, 0) == "ja +1"
    named = assemble("ja out\nexit\nout: exit")
    assert format_instruction(named, 0) == "ja out"
    assert format_instruction(named, 2, "kernel") == "exit"


def test_invalid_slots_print_as_markers_the_assembler_refuses():
    program = Program.from_bytes(bytes.fromhex("0700010001000000" "8e00000000000000" "9500000000000000"),
                                 strict=False)
    text = disassemble(program)
    assert text.splitlines()[:2] == ["<invalid: opcode 0x07 dst 0 src 0 off 1 imm 1>",
                                     "<invalid: opcode 0x8e dst 0 src 0 off 0 imm 0>"]
    with pytest.raises(AssemblyError):
        assemble(text)


def test_a_truncated_lddw_is_invalid_not_a_crash():
    program = Program([Instruction(0x18, 1, 0, 0, 5)])
    assert disassemble(program).startswith("<invalid: opcode 0x18")
    assert format_instruction(program, 0, "kernel") == "r1 = 0x5"


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="style"):
        disassemble(assemble("exit"), style="intel")


# -- kernel style ------------------------------------------------------------------

# Lines copied from real kernel verifier logs and `bpftool prog dump xlated`
# output (selftests, mailing-list reports), each with asm that encodes it.
REAL_LOG_LINES = [
    ("mov %r1, 8", "(b7) r1 = 8"),
    ("stxdw [%r10-8], %r1", "(7b) *(u64 *)(r10 -8) = r1"),
    ("lock fetch add [%r10-8], %r2", "(db) r2 = atomic64_fetch_add((u64 *)(r10 -8), r2)"),
    ("mov %r3, %r10", "(bf) r3 = r10"),
    ("add %r3, %r2", "(0f) r3 += r2"),
    ("jne %r1, 0, -1", "(55) if r1 != 0x0 goto pc-1"),
    ("exit", "(95) exit"),
    ("add %r2, -8", "(07) r2 += -8"),
    ("stxdw [%r2+0], %r1", "(7b) *(u64 *)(r2 +0) = r1"),
    ("lddw %r1, 0xffff888106ef7000", "(18) r1 = 0xffff888106ef7000"),
    ("call 1", "(85) call bpf_map_lookup_elem#1"),
    ("jeq %r0, 0, +6", "(15) if r0 == 0x0 goto pc+6"),
    ("ldxw %r3, [%r0+0]", "(61) r3 = *(u32 *)(r0 +0)"),
    ("lock add [%r0+0], %r1", "(db) lock *(u64 *)(r0 +0) += r1"),
    ("stxw [%r10-4], %r1", "(63) *(u32 *)(r10 -4) = r1"),
    ("call local +5", "(85) call pc+5"),
    ("lsh %r0, 32", "(67) r0 <<= 32"),
    ("arsh %r0, 32", "(c7) r0 s>>= 32"),
    ("ja32 +1", "(06) gotol pc+1"),
    ("jgt %r1, 7, +2", "(25) if r1 > 0x7 goto pc+2"),
    ("jgt %r3, %r7, +2", "(2d) if r3 > r7 goto pc+2"),
    ("ldxh %r7, [%r6+16]", "(69) r7 = *(u16 *)(r6 +16)"),
    ("be16 %r2", "(dc) r2 = be16 r2"),
    ("bswap16 %r0", "(d7) r0 = bswap16 r0"),
    ("and32 %r0, 16128", "(54) w0 &= 16128"),
    ("movsx864 %r1, %r1", "(bf) r1 = (s8)r1"),
    ("lock fetch add32 [%r10-8], %r1", "(c3) r1 = atomic_fetch_add((u32 *)(r10 -8), r1)"),
    ("lock xchg [%r10-8], %r1", "(db) r1 = atomic64_xchg((u64 *)(r10 -8), r1)"),
    ("lock cmpxchg [%r10-8], %r2", "(db) r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r2)"),
    ("stdw [%r10-8], 42", "(7a) *(u64 *)(r10 -8) = 42"),
    ("stxb [%r10-7], %r0", "(73) *(u8 *)(r10 -7) = r0"),
    ("ldxsb %r1, [%r10-8]", "(91) r1 = *(s8 *)(r10 -8)"),
    ("ldxsh %r1, [%r10-8]", "(89) r1 = *(s16 *)(r10 -8)"),
    ("ldxsw %r1, [%r10-8]", "(81) r1 = *(s32 *)(r10 -8)"),
]

# Lines for forms the collected logs lack, written from disasm.c's printf formats.
DISASM_C_LINES = [
    ("mov32 %r0, 1", "(b4) w0 = 1"),
    ("mov %r0, -1", "(b7) r0 = -1"),
    ("add32 %r0, 3", "(04) w0 += 3"),
    ("neg %r0", "(87) r0 = -r0"),
    ("neg32 %r1", "(84) w1 = -w1"),
    ("sdiv %r0, %r1", "(3f) r0 s/= r1"),
    ("smod32 %r0, 7", "(94) w0 s%= 7"),
    ("div %r0, 7", "(37) r0 /= 7"),
    ("movsx1632 %r0, %r1", "(bc) w0 = (s16)w1"),
    ("movsx3264 %r0, %r1", "(bf) r0 = (s32)r1"),
    ("le32 %r3", "(d4) r3 = le32 r3"),
    ("bswap64 %r3", "(d7) r3 = bswap64 r3"),
    ("jset32 %r1, 5, +2", "(46) if w1 & 0x5 goto pc+2"),
    ("jsle32 %r1, %r2, -3", "(de) if w1 s<= w2 goto pc-3"),
    ("jsge %r1, -1, +1", "(75) if r1 s>= 0xffffffff goto pc+1"),
    ("ja -1", "(05) goto pc-1"),
    ("ja32 -5", "(06) gotol pc-5"),
    ("call 999", "(85) call unknown#999"),
    ("call -1", "(85) call unknown#-1"),
    ("call kfunc 1234", "(85) call kernel-function#1234"),
    ("call %r2", "(8d) callx r2"),
    ("lock or32 [%r1+4], %r2", "(c3) lock *(u32 *)(r1 +4) |= r2"),
    ("lock and [%r1-4], %r2", "(db) lock *(u64 *)(r1 -4) &= r2"),
    ("lock xor [%r1+0], %r2", "(db) lock *(u64 *)(r1 +0) ^= r2"),
    ("lock fetch xor [%r1+0], %r2", "(db) r2 = atomic64_fetch_xor((u64 *)(r1 +0), r2)"),
    ("lock xchg32 [%r1+0], %r2", "(c3) r2 = atomic_xchg((u32 *)(r1 +0), r2)"),
    ("lock cmpxchg32 [%r1+0], %r2", "(c3) r0 = atomic_cmpxchg((u32 *)(r1 +0), r0, r2)"),
    ("stw [%r10-8], 5", "(62) *(u32 *)(r10 -8) = 5"),
    ("ldabsb 5", "(30) r0 = *(u8 *)skb[5]"),
    ("ldindh %r3, 8", "(48) r0 = *(u16 *)skb[r3 + 8]"),
    ("lddw %r1, 0x1122334455667788", "(18) r1 = 0x1122334455667788"),
    ("lddw %r1, map_fd 3", "(18) r1 = map[fd:3]"),
    ("lddw %r1, map_value 3, 8", "(18) r1 = map[fd:3][0]+8"),
    ("lddw %r1, map_idx 2", "(18) r1 = map[idx:2]"),
    ("lddw %r1, map_idx_value 2, 4", "(18) r1 = map[idx:2]+4"),
    ("lddw %r1, func +1", "(18) r1 = subprog[+1]"),
]

PADDING = "\nexit" * 8


@pytest.mark.parametrize("source, line", REAL_LOG_LINES + DISASM_C_LINES,
                         ids=[s for s, _ in REAL_LOG_LINES + DISASM_C_LINES])
def test_kernel_style_matches_the_verifier_log(source, line):
    program = assemble(source + PADDING, strict=False)  # some lines jump backwards from slot 0
    assert format_instruction_kernel_log_line(program, 0) == f"0: {line}"
    assert format_instruction(program, 0, "kernel") == line.split(") ", 1)[1]


def test_kernel_disassembly_numbers_slots_like_the_log():
    program = assemble("mov %r1, 0\nlddw %r2, 7\nexit")
    assert disassemble(program, "kernel") == "0: (b7) r1 = 0\n1: (18) r2 = 0x7\n3: (95) exit\n"


@pytest.mark.parametrize("hexslot, line", [
    ("0000000000000000", "0: BUG_ld_00"),  # an lddw tail on its own
    ("a100000000000000", "0: BUG_ldx_a1"),
    ("e300000000000000", "0: BUG_e3"),
    ("c2000000000000c0", "0: (c2) nospec"),
    ("e500010000000000", "0: (e5) may_goto pc+1"),
    ("0d03000000000000", "0: (0d) gotox r3"),
    ("bf21010005000100", "0: (bf) r1 = addr_space_cast(r2, 1, 5)"),
])
def test_kernel_style_prints_what_the_kernel_prints_for_odd_slots(hexslot, line):
    program = Program.from_bytes(bytes.fromhex(hexslot), strict=False)
    assert format_instruction_kernel_log_line(program, 0) == line


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=12))
def test_both_styles_print_any_slots_without_crashing(slots):
    program = Program.from_bytes(b"".join(slots), strict=False)
    for style in ("asm", "kernel"):
        text = disassemble(program, style)
        assert text.endswith("\n")
        for pc in range(len(program)):
            format_instruction(program, pc, style)


# -- helper ids --------------------------------------------------------------------


def test_helper_table_is_the_kernels_full_list():
    assert sorted(HELPER_NAMES) == list(range(212))
    assert HELPER_NAMES[1] == "bpf_map_lookup_elem"
    assert HELPER_NAMES[6] == "bpf_trace_printk"
    assert HELPER_NAMES[12] == "bpf_tail_call"
    assert HELPER_NAMES[130] == "bpf_ringbuf_output"
    assert HELPER_NAMES[211] == "bpf_cgrp_storage_delete"
    assert len(set(HELPER_NAMES.values())) == len(HELPER_NAMES)


def test_helper_lookups_both_ways():
    assert helper_name(2) == "bpf_map_update_elem"
    assert helper_name(5000) == "unknown"
    assert helper_id("bpf_ktime_get_ns") == 5
    assert helper_id("ktime_get_ns") == 5
    assert helper_id("bpf_no_such_thing") is None
