"""Our own corpus (conformance/cases/) passes on the interpreter and covers the ISA."""

from __future__ import annotations

import pytest

from ebpfvm.conformance import CASES_DIR, load_case, run_paths
from ebpfvm.conformance.runner import Status, build_program
from ebpfvm.isa import FORMS, Kind, branch_target, lddw_tails
from ebpfvm.program import Program

# Left out on purpose: the legacy packet loads (RFC 9669 §5.5, deprecated and
# needing a socket buffer) and callx (an LLVM extension, not in RFC 9669).
NOT_COVERED = {Kind.LD_ABS, Kind.LD_IND, Kind.CALLX}

# Opcodes whose off or imm field selects a different operation.
VARIANT_FIELD = {
    0x34: "off", 0x3c: "off", 0x94: "off", 0x9c: "off",  # div32/mod32 vs sdiv32/smod32
    0x37: "off", 0x3f: "off", 0x97: "off", 0x9f: "off",  # div/mod vs sdiv/smod
    0xbc: "off", 0xbf: "off",  # mov vs movsx widths
    0xc3: "imm", 0xdb: "imm",  # atomic operations
    0xd4: "imm", 0xdc: "imm", 0xd7: "imm",  # swap widths
}

CASE_FILES = sorted(CASES_DIR.glob("*.data"))


def test_corpus_is_all_there() -> None:
    assert len(CASE_FILES) >= 120


def test_every_case_passes_on_the_interpreter() -> None:
    results = list(run_paths([CASES_DIR], "interp"))
    failures = [r.line() for r in results if r.status is not Status.PASS]
    assert not failures, "\n".join(failures)
    assert len(results) == len(CASE_FILES)


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_every_case_says_what_it_checks(path) -> None:
    case = load_case(path)
    comments = [line.lstrip("#").strip() for line in case.header if line.strip()]
    assert comments and comments[0].startswith("ebpfvm conformance corpus (MIT)."), path.name
    assert len(" ".join(comments)) > len("ebpfvm conformance corpus (MIT).") + 20, path.name
    if case.interpreter_only is not None:
        assert len(case.interpreter_only) > 10, "say why the kernel would refuse it"


def _corpus_programs() -> list[Program]:
    programs = []
    for path in CASE_FILES:
        built = build_program(load_case(path))
        if isinstance(built, Program):
            programs.append(built)
    return programs


def test_corpus_uses_every_opcode_and_variant() -> None:
    used: set[tuple[int, int | None]] = set()
    for program in _corpus_programs():
        for insn in program.instructions:
            field = VARIANT_FIELD.get(insn.opcode)
            used.add((insn.opcode, getattr(insn, field) if field else None))
    missing = []
    for opcode, form in FORMS.items():
        if form.kind in NOT_COVERED:
            continue
        field = VARIANT_FIELD.get(opcode)
        if field is None:
            if (opcode, None) not in used:
                missing.append(f"{opcode:#04x}")
            continue
        for value in sorted(getattr(form, field)):
            if (opcode, value) not in used:
                missing.append(f"{opcode:#04x} {field}={value}")
    assert not missing, f"opcodes no corpus case uses: {', '.join(missing)}"


def test_corpus_has_error_raw_and_mem_cases() -> None:
    cases = [load_case(p) for p in CASE_FILES]
    assert sum(c.expects_error for c in cases) >= 10
    assert sum(c.raw is not None and c.asm is None for c in cases) >= 5
    assert sum(c.raw is not None and c.asm is not None for c in cases) >= 5
    assert sum(bool(c.mem) for c in cases) >= 5


def _unreachable_slots(program: Program) -> list[int]:
    insns = program.instructions
    tails = lddw_tails(insns)
    seen: set[int] = set()
    todo = [0]
    while todo:  # bounded: each slot is expanded once
        pc = todo.pop()
        if pc in seen or not 0 <= pc < len(insns):
            continue
        seen.add(pc)
        kind = FORMS[insns[pc].opcode].kind
        target = branch_target(insns[pc], pc)
        if target is not None:
            todo.append(target)
        if kind not in (Kind.JA, Kind.EXIT):
            todo.append(pc + (2 if kind is Kind.LDDW else 1))
    return [pc for pc in range(len(insns)) if pc not in seen and pc not in tails]


SHIFTS = {0x64: 32, 0x74: 32, 0xc4: 32, 0x67: 64, 0x77: 64, 0xc7: 64}  # lsh/rsh/arsh with an immediate
DIVISIONS_BY_IMM = {0x34, 0x94, 0x37, 0x97}


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_cases_the_kernel_should_run_avoid_what_its_verifier_refuses(path) -> None:
    """The kernel engine will run this corpus too. Cases that expect a result
    and are not marked interpreter-only must not contain what the Linux
    verifier refuses outright: unreachable slots, immediate shifts >= the
    width ("invalid shift") and division by the constant 0."""
    case = load_case(path)
    if case.expects_error or case.interpreter_only is not None:
        return
    program = build_program(case)
    assert isinstance(program, Program)
    assert not _unreachable_slots(program), f"unreachable slots {_unreachable_slots(program)}"
    for pc, insn in enumerate(program.instructions):
        if insn.opcode in SHIFTS:
            assert 0 <= insn.imm < SHIFTS[insn.opcode], f"insn {pc}: immediate shift by {insn.imm}"
        if insn.opcode in DIVISIONS_BY_IMM:
            assert insn.imm != 0, f"insn {pc}: division by the constant 0"
