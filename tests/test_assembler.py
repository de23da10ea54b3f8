"""The assembler: encodings, errors with positions, the conformance suite's sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm import AssemblyError, Program
from ebpfvm.asm import assemble
from ebpfvm.asm.mnemonics import ALIASES, ENTRIES
from ebpfvm.conformance.dataformat import DataFormatError, parse_case

from shared_suite import SHARED_SUITE, needs_shared_suite, suite_files

# One line of source and the slot(s) it must produce, written out by hand from
# the RFC 9669 encoding: opcode, src<<4|dst, 16-bit offset (LE), 32-bit imm (LE).
# Registers are r1 (dst) and r2 (src) throughout unless the line says otherwise.
ENCODINGS = [
    # ALU64, immediate and register sources
    ("add %r1, 2", "0701000002000000"), ("add %r1, %r2", "0f21000000000000"),
    ("sub %r1, 2", "1701000002000000"), ("sub %r1, %r2", "1f21000000000000"),
    ("mul %r1, 2", "2701000002000000"), ("mul %r1, %r2", "2f21000000000000"),
    ("div %r1, 2", "3701000002000000"), ("div %r1, %r2", "3f21000000000000"),
    ("or %r1, 2", "4701000002000000"), ("or %r1, %r2", "4f21000000000000"),
    ("and %r1, 2", "5701000002000000"), ("and %r1, %r2", "5f21000000000000"),
    ("lsh %r1, 2", "6701000002000000"), ("lsh %r1, %r2", "6f21000000000000"),
    ("rsh %r1, 2", "7701000002000000"), ("rsh %r1, %r2", "7f21000000000000"),
    ("neg %r1", "8701000000000000"),
    ("mod %r1, 2", "9701000002000000"), ("mod %r1, %r2", "9f21000000000000"),
    ("xor %r1, 2", "a701000002000000"), ("xor %r1, %r2", "af21000000000000"),
    ("mov %r1, 2", "b701000002000000"), ("mov %r1, %r2", "bf21000000000000"),
    ("arsh %r1, 2", "c701000002000000"), ("arsh %r1, %r2", "cf21000000000000"),
    ("sdiv %r1, 2", "3701010002000000"), ("sdiv %r1, %r2", "3f21010000000000"),
    ("smod %r1, 2", "9701010002000000"), ("smod %r1, %r2", "9f21010000000000"),
    ("movsx864 %r1, %r2", "bf21080000000000"), ("movsx1664 %r1, %r2", "bf21100000000000"),
    ("movsx3264 %r1, %r2", "bf21200000000000"),
    ("bswap16 %r1", "d701000010000000"), ("bswap32 %r1", "d701000020000000"),
    ("bswap64 %r1", "d701000040000000"),
    ("swap16 %r1", "d701000010000000"), ("swap32 %r1", "d701000020000000"),
    ("swap64 %r1", "d701000040000000"),
    # ALU (32-bit)
    ("add32 %r1, 2", "0401000002000000"), ("add32 %r1, %r2", "0c21000000000000"),
    ("sub32 %r1, 2", "1401000002000000"), ("sub32 %r1, %r2", "1c21000000000000"),
    ("mul32 %r1, 2", "2401000002000000"), ("mul32 %r1, %r2", "2c21000000000000"),
    ("div32 %r1, 2", "3401000002000000"), ("div32 %r1, %r2", "3c21000000000000"),
    ("or32 %r1, 2", "4401000002000000"), ("or32 %r1, %r2", "4c21000000000000"),
    ("and32 %r1, 2", "5401000002000000"), ("and32 %r1, %r2", "5c21000000000000"),
    ("lsh32 %r1, 2", "6401000002000000"), ("lsh32 %r1, %r2", "6c21000000000000"),
    ("rsh32 %r1, 2", "7401000002000000"), ("rsh32 %r1, %r2", "7c21000000000000"),
    ("neg32 %r1", "8401000000000000"),
    ("mod32 %r1, 2", "9401000002000000"), ("mod32 %r1, %r2", "9c21000000000000"),
    ("xor32 %r1, 2", "a401000002000000"), ("xor32 %r1, %r2", "ac21000000000000"),
    ("mov32 %r1, 2", "b401000002000000"), ("mov32 %r1, %r2", "bc21000000000000"),
    ("arsh32 %r1, 2", "c401000002000000"), ("arsh32 %r1, %r2", "cc21000000000000"),
    ("sdiv32 %r1, 2", "3401010002000000"), ("sdiv32 %r1, %r2", "3c21010000000000"),
    ("smod32 %r1, 2", "9401010002000000"), ("smod32 %r1, %r2", "9c21010000000000"),
    ("movsx832 %r1, %r2", "bc21080000000000"), ("movsx1632 %r1, %r2", "bc21100000000000"),
    ("le16 %r1", "d401000010000000"), ("le32 %r1", "d401000020000000"), ("le64 %r1", "d401000040000000"),
    ("be16 %r1", "dc01000010000000"), ("be32 %r1", "dc01000020000000"), ("be64 %r1", "dc01000040000000"),
    # immediates: negative, hex bit patterns, the extremes
    ("mov %r0, -1", "b7000000ffffffff"), ("mov32 %r0, 0xffffffff", "b4000000ffffffff"),
    ("mov %r0, 2147483647", "b7000000ffffff7f"), ("mov %r0, -2147483648", "b700000000000080"),
    ("mov %r0, 0x80000000", "b700000000000080"), ("mov %r0, -0x10", "b7000000f0ffffff"),
    # loads and stores
    ("ldxb %r1, [%r2+4]", "7121040000000000"), ("ldxh %r1, [%r2+4]", "6921040000000000"),
    ("ldxw %r1, [%r2+4]", "6121040000000000"), ("ldxdw %r1, [%r2+4]", "7921040000000000"),
    ("ldxsb %r1, [%r2-1]", "9121ffff00000000"), ("ldxsh %r1, [%r2-2]", "8921feff00000000"),
    ("ldxsw %r1, [%r2-4]", "8121fcff00000000"),
    ("ldxw %r0, [%r1]", "6110000000000000"), ("ldxw %r0, [%r1+0x10]", "6110100000000000"),
    ("ldxw %r0, [%r1 - 4]", "6110fcff00000000"), ("ldxw %r0, [%r1+32767]", "6110ff7f00000000"),
    ("ldxw %r0, [%r1-32768]", "6110008000000000"),
    ("stb [%r1-8], 5", "7201f8ff05000000"), ("sth [%r1-8], 5", "6a01f8ff05000000"),
    ("stw [%r1-8], 5", "6201f8ff05000000"), ("stdw [%r1-8], 5", "7a01f8ff05000000"),
    ("stdw [%r10-8], -1", "7a0af8ffffffffff"),
    ("stxb [%r1-8], %r2", "7321f8ff00000000"), ("stxh [%r1-8], %r2", "6b21f8ff00000000"),
    ("stxw [%r1-8], %r2", "6321f8ff00000000"), ("stxdw [%r1-8], %r2", "7b21f8ff00000000"),
    # atomics: 64-bit (0xdb) and 32-bit (0xc3), the operation in imm
    ("lock add [%r1+0], %r2", "db21000000000000"), ("lock add32 [%r1+0], %r2", "c321000000000000"),
    ("lock or [%r1+0], %r2", "db21000040000000"), ("lock or32 [%r1+0], %r2", "c321000040000000"),
    ("lock and [%r1+0], %r2", "db21000050000000"), ("lock and32 [%r1+0], %r2", "c321000050000000"),
    ("lock xor [%r1+0], %r2", "db210000a0000000"), ("lock xor32 [%r1+0], %r2", "c3210000a0000000"),
    ("lock fetch add [%r1+0], %r2", "db21000001000000"), ("lock fetch add32 [%r1+0], %r2", "c321000001000000"),
    ("lock fetch or [%r1+0], %r2", "db21000041000000"), ("lock fetch or32 [%r1+0], %r2", "c321000041000000"),
    ("lock fetch and [%r1+0], %r2", "db21000051000000"), ("lock fetch and32 [%r1+0], %r2", "c321000051000000"),
    ("lock fetch xor [%r1+0], %r2", "db210000a1000000"), ("lock fetch xor32 [%r1+0], %r2", "c3210000a1000000"),
    ("lock xchg [%r10-8], %r1", "db1af8ffe1000000"), ("lock xchg32 [%r10-8], %r1", "c31af8ffe1000000"),
    ("lock cmpxchg [%r10-8], %r1", "db1af8fff1000000"), ("lock cmpxchg32 [%r10-8], %r1", "c31af8fff1000000"),
    # lddw: two slots (space-separated here), low half of the value first
    ("lddw %r0, 0x1122334455667788", "1800000088776655 0000000044332211"),
    ("lddw %r1, 2147483648", "1801000000000080 0000000000000000"),
    ("lddw %r1, -1", "18010000ffffffff 00000000ffffffff"),
    ("lddw %r1, 0xffffffffffffffff", "18010000ffffffff 00000000ffffffff"),
    ("lddw %r1, map_fd 3", "1811000003000000 0000000000000000"),
    ("lddw %r1, map_value 3, 8", "1821000003000000 0000000008000000"),
    ("lddw %r1, btf_id 7", "1831000007000000 0000000000000000"),
    ("lddw %r1, map_idx 2", "1851000002000000 0000000000000000"),
    ("lddw %r1, map_idx_value 2, 16", "1861000002000000 0000000010000000"),
    ("lddw %r1, func +2", "1841000002000000 0000000000000000"),
    # legacy packet loads
    ("ldabsb 5", "3000000005000000"), ("ldabsh 5", "2800000005000000"), ("ldabsw 5", "2000000005000000"),
    ("ldindb %r3, 5", "5030000005000000"), ("ldindh %r3, 5", "4830000005000000"),
    ("ldindw %r3, 5", "4030000005000000"),
    # jumps: offsets count slots after the jump
    ("ja +3", "0500030000000000"), ("ja32 +3", "0600000003000000"),
    ("jeq %r1, 5, +1", "1501010005000000"), ("jeq %r1, %r2, +1", "1d21010000000000"),
    ("jgt %r1, 5, +1", "2501010005000000"), ("jgt %r1, %r2, +1", "2d21010000000000"),
    ("jge %r1, 5, +1", "3501010005000000"), ("jge %r1, %r2, +1", "3d21010000000000"),
    ("jset %r1, 5, +1", "4501010005000000"), ("jset %r1, %r2, +1", "4d21010000000000"),
    ("jne %r1, 5, +1", "5501010005000000"), ("jne %r1, %r2, +1", "5d21010000000000"),
    ("jsgt %r1, 5, +1", "6501010005000000"), ("jsgt %r1, %r2, +1", "6d21010000000000"),
    ("jsge %r1, 5, +1", "7501010005000000"), ("jsge %r1, %r2, +1", "7d21010000000000"),
    ("jlt %r1, 5, +1", "a501010005000000"), ("jlt %r1, %r2, +1", "ad21010000000000"),
    ("jle %r1, 5, +1", "b501010005000000"), ("jle %r1, %r2, +1", "bd21010000000000"),
    ("jslt %r1, 5, +1", "c501010005000000"), ("jslt %r1, %r2, +1", "cd21010000000000"),
    ("jsle %r1, 5, +1", "d501010005000000"), ("jsle %r1, %r2, +1", "dd21010000000000"),
    ("jeq32 %r1, 5, +1", "1601010005000000"), ("jeq32 %r1, %r2, +1", "1e21010000000000"),
    ("jgt32 %r1, 5, +1", "2601010005000000"), ("jgt32 %r1, %r2, +1", "2e21010000000000"),
    ("jge32 %r1, 5, +1", "3601010005000000"), ("jge32 %r1, %r2, +1", "3e21010000000000"),
    ("jset32 %r1, 5, +1", "4601010005000000"), ("jset32 %r1, %r2, +1", "4e21010000000000"),
    ("jne32 %r1, 5, +1", "5601010005000000"), ("jne32 %r1, %r2, +1", "5e21010000000000"),
    ("jsgt32 %r1, 5, +1", "6601010005000000"), ("jsgt32 %r1, %r2, +1", "6e21010000000000"),
    ("jsge32 %r1, 5, +1", "7601010005000000"), ("jsge32 %r1, %r2, +1", "7e21010000000000"),
    ("jlt32 %r1, 5, +1", "a601010005000000"), ("jlt32 %r1, %r2, +1", "ae21010000000000"),
    ("jle32 %r1, 5, +1", "b601010005000000"), ("jle32 %r1, %r2, +1", "be21010000000000"),
    ("jslt32 %r1, 5, +1", "c601010005000000"), ("jslt32 %r1, %r2, +1", "ce21010000000000"),
    ("jsle32 %r1, 5, +1", "d601010005000000"), ("jsle32 %r1, %r2, +1", "de21010000000000"),
    ("jeq %r1, 0xffffffff, +0", "15010000ffffffff"), ("jsge %r1, -1, +2", "75010200ffffffff"),
    # calls and exit
    ("call 5", "8500000005000000"), ("call helper 5", "8500000005000000"),
    ("call bpf_map_lookup_elem", "8500000001000000"), ("call map_lookup_elem", "8500000001000000"),
    ("call local +2", "8510000002000000"), ("call kfunc 7", "8520000007000000"),
    ("call runtime 7", "8520000007000000"),
    ("call %r2", "8d02000000000000"), ("callx %r2", "8d02000000000000"),
    ("exit", "9500000000000000"),
    # spelling leniency: case of mnemonics, spacing
    ("MOV %r1,2", "b701000002000000"), ("  add   %r1 ,  %r2   # comment", "0f21000000000000"),
]

PADDING = "\nexit" * 6  # gives forward jumps in the table somewhere to land


def _hex(program: Program, slots: int) -> str:
    return program.to_bytes()[:8 * slots].hex()


@pytest.mark.parametrize("source, expected", ENCODINGS, ids=[s for s, _ in ENCODINGS])
def test_each_mnemonic_encodes_as_the_rfc_says(source, expected):
    program = assemble(source + PADDING)
    expected = expected.replace(" ", "")
    assert _hex(program, len(expected) // 16) == expected


def test_the_encoding_table_covers_every_mnemonic_and_alias():
    covered = set()
    for source, _ in ENCODINGS:
        words = source.lower().replace(",", " ").split()
        for count in (3, 2, 1):
            name = " ".join(words[:count])
            if any(e.name == name for e in ENTRIES) or name in ALIASES:
                covered.add(name)
                break
    assert {e.name for e in ENTRIES} | set(ALIASES) <= covered


# -- labels ------------------------------------------------------------------------

def test_labels_resolve_forward_and_backward_and_count_lddw_as_two_slots():
    program = assemble("""
        start:
        lddw %r1, 1
        jeq %r1, 1, done   # forward over the lddw's two slots
        ja start           # backward
        done: exit
    """)
    insns = program.instructions
    assert insns[2].off == 1  # from pc 2 to pc 4
    assert insns[3].off == -4  # from pc 3 to pc 0
    assert program.labels == {0: "start", 4: "done"}


def test_exit_names_the_first_exit_instruction_unless_a_label_says_otherwise():
    implicit = assemble("jeq %r1, 0, exit\nmov %r0, 1\nexit\nmov %r0, 2\nexit")
    assert implicit.instructions[0].off == 1
    explicit = assemble("jeq %r1, 0, exit\nexit\nexit:\nmov %r0, 2\nexit")
    assert explicit.instructions[0].off == 1  # to the label, not the first exit
    assert explicit.labels == {2: "exit"}


def test_labels_may_share_names_with_mnemonics_and_sit_on_the_instruction_line():
    program = assemble("mov: mov %r0, 0\nja: ja mov\nlock: exit")
    assert program.instructions[1].off == -2
    assert program.labels == {0: "mov", 1: "ja", 2: "lock"}


def test_call_local_and_ja32_use_imm_and_lddw_func_points_at_a_subprogram():
    program = assemble("call local f\nja32 f\nexit\nf:\nlddw %r1, func f\nexit")
    assert (program.instructions[0].src, program.instructions[0].imm) == (1, 2)
    assert (program.instructions[1].off, program.instructions[1].imm) == (0, 1)
    assert (program.instructions[3].src, program.instructions[3].imm) == (4, -1)
    assert program.subprogram_entries() == (0, 3)


def test_a_long_jump_fits_ja32_but_not_ja():
    body = "mov %r0, 0\n" * 40000
    far = assemble(f"ja32 end\n{body}end: exit")
    assert far.instructions[0].imm == 40000
    with pytest.raises(AssemblyError) as err:
        assemble(f"ja end\n{body}end: exit")
    assert "16-bit" in err.value.message and "ja32" in err.value.message
    assert (err.value.line, err.value.column) == (1, 4)


# -- errors --------------------------------------------------------------------------

ERRORS = [
    # (source, line, column, words the message must contain)
    ("ldxq %r0, %r1", 1, 1, "unknown mnemonic 'ldxq'"),
    ("mov %r0, 1\n  frob", 2, 3, "unknown mnemonic"),
    ("lddw %r0", 1, 1, "takes 2 or 3 operands"),
    ("exit %r0", 1, 1, "takes 0 operands"),
    ("add %r0", 1, 1, "takes 2 operands"),
    ("neg %r0, 1", 1, 1, "takes 1 operand"),
    ("or %r0, %r50", 1, 9, "invalid register '%r50'"),
    ("mov %r11, 1", 1, 5, "invalid register '%r11'"),
    ("mov %rx, 1", 1, 5, "invalid register"),
    ("mov %r0, %r01", 1, 10, "invalid register"),
    ("mov32 %r0, 2147483648", 1, 12, "out of range"),
    ("mov32 %r0, 0x100000000", 1, 12, "out of range"),
    ("mov %r0, -2147483649", 1, 10, "out of range"),
    ("stw [%r10-4], 4294967296", 1, 15, "out of range"),
    ("lddw %r0, 0x10000000000000000", 1, 11, "64 bits"),
    ("lddw %r0, -0x8000000000000001", 1, 11, "64 bits"),
    ("ldxb %r0, [%r1+0x10000]", 1, 15, "offset +0x10000 out of range"),
    ("ldxb %r0, [%r1-32769]", 1, 15, "out of range"),
    ("ldxb %r0, %r1", 1, 11, "memory operand"),
    ("ldxb %r0, [%r1", 1, 15, "expected ']'"),
    ("ldxb %r0, [%r1 4]", 1, 16, "expected '+' or '-'"),
    ("ldxb %r0, [4]", 1, 12, "register after '['"),
    ("ldxb %r0, [%r1+4] 5", 1, 19, "unexpected '5'"),
    ("ja NOT_A_LABEL\nexit", 1, 4, "undefined label 'NOT_A_LABEL'"),
    ("jeq %r1, 1, nowhere\nexit", 1, 13, "undefined label"),
    ("ja 3\nexit", 1, 4, "signed offset"),
    ("ja +40000", 1, 4, "16 signed bits"),
    ("ja +5\nexit", 1, 4, "outside the program"),
    ("lddw %r0, 1\nja -2\nexit", 2, 4, "middle of an lddw"),
    ("call local -5\nexit", 1, 12, "outside the program"),
    ("a:\na:\nexit", 2, 1, "duplicate label 'a' (first defined on line 1)"),
    ("lock or [%r10-8]", 1, 1, "takes 2 operands"),
    ("lock", 1, 1, "expected an operation after 'lock'"),
    ("lock frob [%r1], %r2", 1, 6, "unknown atomic operation"),
    ("add %r0, , 1", 1, 10, "missing operand"),
    ("add %r0, 1,", 1, 12, "missing operand"),
    ("add %r0, [%r1]", 1, 10, "must be an immediate or a register"),
    ("mov %r0, 1 $", 1, 12, "unexpected character '$'"),
    ("mov %r0, 0x1g", 1, 10, "malformed number"),
    ("mov %r0, 1" + "0" * 60, 1, 10, "too long"),
    ("%r0 add 1", 1, 1, "expected an instruction or a label"),
    ("call frobnicate", 1, 6, "unknown helper 'frobnicate'"),
    ("lddw %r1, map_fd", 1, 17, "takes one value"),
    ("lddw %r1, bogus 3", 1, 11, "unknown lddw source"),
    ("lddw %r1, 5, 6", 1, 14, "no third operand"),
    ("", 1, 1, "no instructions"),
    ("# only a comment\n\n", 1, 1, "no instructions"),
]


@pytest.mark.parametrize("source, line, column, words", ERRORS, ids=[e[0][:30] for e in ERRORS])
def test_errors_name_line_and_column(source, line, column, words):
    with pytest.raises(AssemblyError) as err:
        assemble(source, source="prog.s")
    assert words in err.value.message
    assert (err.value.line, err.value.column) == (line, column)
    assert str(err.value).startswith(f"prog.s:{line}:{column}: ")


def test_non_strict_mode_keeps_out_of_range_jumps_for_the_verifier_to_report():
    program = assemble("ja +5\nexit", strict=False)
    assert program.instructions[0].off == 5
    assert program.issues()


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_assembles_or_raises_assembly_error(text):
    try:
        assemble(text)
    except AssemblyError as err:
        assert err.line >= 1 and err.column >= 1


_PIECES = st.sampled_from([
    "mov", "add32", "lock", "fetch", "xchg", "call", "local", "lddw", "map_value", "func", "ja", "ja32",
    "jeq", "exit", "ldxb", "stdw", "L1", "L1:", "exit:", "%r0", "%r10", "%r11", "%r", "[", "]", "[%r1+4]",
    "[%r10-8]", ",", ",", ":", "+1", "-1", "0x10", "4294967295", "-0x80000000", "9" * 25, "#", "\n",
])


@settings(max_examples=500)
@given(st.lists(_PIECES, max_size=25))
def test_near_miss_sources_never_escape_as_other_exceptions(pieces):
    try:
        assemble(" ".join(pieces))
    except AssemblyError:
        pass


# -- the conformance suite -----------------------------------------------------------

def sections(path: Path) -> dict[str, str]:
    """The program sections of a .data file, read with the project's parser."""
    case = parse_case(path.read_text(), str(path))
    found = {}
    if case.asm is not None:
        found["asm"] = case.asm
    raw = case.raw_bytes()
    if raw is not None:
        found["raw"] = raw
    return found


@needs_shared_suite
@pytest.mark.parametrize("path", suite_files("tests"), ids=lambda p: p.name)
def test_every_conformance_program_assembles(path):
    program = assemble(sections(path)["asm"], source=str(path))
    assert program.issues() == []


@needs_shared_suite
def test_lddw_raw_section_matches_the_assembled_bytes():
    data = sections(SHARED_SUITE / "tests" / "lddw.data")
    assert assemble(data["asm"]).to_bytes() == data["raw"]


# Negative cases whose asm is well formed: they fail at run time, not here.
WELL_FORMED_NEGATIVES = {"error.data", "incorrect_return_value_high_bits.data"}


def _negative_asm_files() -> list[Path]:
    found = []
    for path in suite_files("negative"):
        try:
            if "asm" in sections(path):
                found.append(path)
        except DataFormatError:  # the runner's business (unknown sections)
            continue
    return found


@needs_shared_suite
@pytest.mark.parametrize("path", _negative_asm_files(),
                         ids=lambda p: p.name)
def test_malformed_negative_sources_raise_assembly_error(path):
    asm = sections(path)["asm"]
    if path.name in WELL_FORMED_NEGATIVES:
        assemble(asm)
        return
    with pytest.raises(AssemblyError):
        assemble(asm, source=path.name)
