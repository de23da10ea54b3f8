"""Hypothesis strategies shared by the test suites.

``valid_programs()`` draws programs that pass the ISA checks (``Program.check``):
every opcode of ``FORMS`` with field values its rules allow, jumps and calls
landing on instruction boundaries inside the program, and lddw pairs with a
clean second slot. The field rules are read from ``FORMS`` itself, so a new
form is covered without touching this file.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ebpfvm import Program
from ebpfvm.isa import FORMS, CallKind, InsnClass, Instruction, Kind, LddwSource, insn_class
from ebpfvm.isa.forms import ANY, MAX_REGISTER, REG

OPCODES = sorted(FORMS)
FIELD_ANY = {
    "dst": st.integers(0, MAX_REGISTER),
    "src": st.integers(0, MAX_REGISTER),
    "off": st.integers(-0x8000, 0x7FFF),
    "imm": st.integers(-0x8000_0000, 0x7FFF_FFFF),
}
LABEL_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def _field(draw: st.DrawFn, name: str, rule: object) -> int:
    if rule is REG:
        return draw(st.integers(0, MAX_REGISTER))
    if rule is ANY:
        return draw(FIELD_ANY[name])
    return draw(st.sampled_from(sorted(rule)))  # type: ignore[arg-type]


def _targets_field(insn: Instruction) -> str | None:
    """Which field of ``insn`` holds a slot offset that must land on an instruction."""
    kind = FORMS[insn.opcode].kind
    if kind is Kind.JA:
        return "imm" if insn_class(insn.opcode) is InsnClass.JMP32 else "off"
    if kind is Kind.JUMP:
        return "off"
    if kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return "imm"
    if kind is Kind.LDDW and insn.src == LddwSource.FUNC:
        return "imm"
    return None


@st.composite
def valid_programs(draw: st.DrawFn, max_insns: int = 24, with_labels: bool = False) -> Program:
    """A well-formed program of 1..max_insns instructions (lddw counts once).

    With ``with_labels`` the program also carries a few label names at
    instruction boundaries, as an assembled program would.
    """
    opcodes = draw(st.lists(st.sampled_from(OPCODES), min_size=1, max_size=max_insns))
    drafts = []
    for opcode in opcodes:
        form = FORMS[opcode]
        fields = {name: _field(draw, name, getattr(form, name)) for name in ("dst", "src", "off", "imm")}
        drafts.append(Instruction(opcode, **fields))
    starts, pc = [], 0
    for insn in drafts:
        starts.append(pc)
        pc += 2 if FORMS[insn.opcode].kind is Kind.LDDW else 1
    insns: list[Instruction] = []
    for insn, at in zip(drafts, starts):
        field = _targets_field(insn)
        if field is not None:
            target = draw(st.sampled_from(starts))
            insn = Instruction(insn.opcode, insn.dst, insn.src, **{
                "off": insn.off, "imm": insn.imm, field: target - (at + 1)})
        insns.append(insn)
        if FORMS[insn.opcode].kind is Kind.LDDW:
            insns.append(Instruction(0, 0, 0, 0, draw(FIELD_ANY["imm"])))
    labels: dict[int, str] = {}
    if with_labels:
        names = draw(st.lists(LABEL_NAMES, unique=True, max_size=4))
        for name in names:
            labels[draw(st.sampled_from(starts))] = name
    return Program(insns, labels=labels).check()
