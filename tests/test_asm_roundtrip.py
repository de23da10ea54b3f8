"""assemble(disassemble(p)) == p for every valid program, and the mnemonic
table's coverage of the ISA that makes it so."""

from __future__ import annotations

from itertools import product

import pytest
from hypothesis import given, settings
from shared_suite import needs_shared_suite, suite_files
from strategies import valid_programs

from ebpfvm import Program
from ebpfvm.asm import assemble, disassemble
from ebpfvm.asm.mnemonics import ENTRIES, entry_for
from ebpfvm.isa import FORMS, Instruction
from ebpfvm.isa.forms import ANY, REG

# Stand-ins for "any value" when enumerating the discriminating field values.
_SAMPLES = {"dst": (0,), "src": (0,), "off": (0, 1, -1), "imm": (0, 1, -1)}


def _allowed(rule: object, field: str) -> tuple[int, ...]:
    if rule is REG or rule is ANY:
        return _SAMPLES[field]
    return tuple(sorted(rule))  # type: ignore[arg-type]


def test_every_valid_form_has_exactly_one_spelling():
    for opcode, form in FORMS.items():
        combos = product(*(_allowed(getattr(form, f), f) for f in ("dst", "src", "off", "imm")))
        for dst, src, off, imm in combos:
            insn = Instruction(opcode, dst, src, off, imm)
            matching = [e for e in ENTRIES if e.matches(insn)]
            assert len(matching) == 1, (insn, matching)
            assert entry_for(insn) is matching[0]


def test_every_spelling_names_a_valid_form():
    for entry in ENTRIES:
        form = FORMS[entry.opcode]
        for field, value in entry.fixed:
            assert not form.violations(**{"dst": 0, "src": 0, "off": 0, "imm": 0, field: value}), entry


@settings(max_examples=400, deadline=None)
@given(valid_programs())
def test_asm_round_trip_reproduces_the_bytes(program):
    text = disassemble(program)
    again = assemble(text)
    assert again.to_bytes() == program.to_bytes()
    assert disassemble(again) == text


@settings(max_examples=200, deadline=None)
@given(valid_programs(with_labels=True))
def test_asm_round_trip_keeps_label_names(program):
    again = assemble(disassemble(program))
    assert again.to_bytes() == program.to_bytes()
    for pc, name in program.labels.items():
        assert again.labels.get(pc) == name


@settings(max_examples=100, deadline=None)
@given(valid_programs())
def test_kernel_style_prints_one_line_per_instruction(program):
    lines = disassemble(program, "kernel").splitlines()
    lddw_count = sum(1 for insn in program.instructions if insn.opcode == 0x18)
    assert len(lines) == len(program) - lddw_count
    assert all(": (" in line for line in lines)


def test_long_programs_round_trip_with_far_jumps():
    body = [Instruction(0xB7, 0, 0, 0, i) for i in range(5000)]
    program = Program([Instruction(0x05, off=5000), *body, Instruction(0x06, imm=-5002), Instruction(0x95)])
    program.check()
    assert assemble(disassemble(program)).to_bytes() == program.to_bytes()


@needs_shared_suite
@pytest.mark.parametrize("path", suite_files("tests"), ids=lambda p: p.name)
def test_conformance_programs_round_trip(path):
    from test_assembler import sections

    program = assemble(sections(path)["asm"])
    again = assemble(disassemble(program))
    assert again.to_bytes() == program.to_bytes()
    assert {pc: again.labels[pc] for pc in program.labels} == program.labels
