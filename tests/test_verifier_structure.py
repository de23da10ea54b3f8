"""The verifier's structural layer (``ebpfvm.verifier.structure``) against the kernel.

The measure is the verdict corpus (``conformance/verifier/*.case``, recorded
from Linux 6.18): every accepted case must pass ``check_structure``, every
reject whose kernel error line is one of the messages this layer implements
(``CLAIMED``) must get exactly that line and errno, and every other reject
must pass (the kernel got past these checks before it complained).  The
field checks ``do_check`` makes at an instruction are measured the same way
through ``instruction_error``.  A hypothesis property loads generated
programs in the live kernel and compares, and unit tests pin the rules the
corpus cannot show (unprivileged loads, limits, orderings).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ebpfvm import Program
from ebpfvm.conformance import verdicts as v
from ebpfvm.isa import Instruction
from ebpfvm.kernel import constants
from ebpfvm.maps.definition import MapDefinition
from ebpfvm.verifier import messages as M
from ebpfvm.verifier.cfg import ControlFlowGraph
from ebpfvm.verifier.structure import KERNEL_OPCODES, StructureError, check_structure, instruction_error

from strategies import valid_programs

# The kernel messages check_structure implements: on corpus cases whose error
# line is one of these there must be no disagreement.
CLAIMED: tuple[M.Message, ...] = M.STRUCTURAL
# The do_check-time field checks instruction_error implements.
CLAIMED_AT_INSN: tuple[M.Message, ...] = M.INSTRUCTION


# --- building programs from cases ----------------------------------------------------


def _map_definition(spec: v.MapSpec) -> MapDefinition:
    name = constants.MAP_TYPE_NAMES[int(spec.map_type)] if spec.map_type.isdigit() else spec.map_type
    return MapDefinition(name=spec.name, map_type=name, key_size=spec.key_size, value_size=spec.value_size,
                         max_entries=spec.max_entries, flags=spec.flags_value)


def program_of(case: v.Case) -> Program:
    """The case's program as the verifier sees it: the bytes it loads (map
    references by index), its program type and its maps."""
    decoded = Program.from_bytes(v.build_program(case), source=case.path, strict=False)
    return Program(decoded.instructions, source=case.path, prog_type=case.prog_type,
                   maps=[_map_definition(spec) for spec in case.maps])


@dataclass(frozen=True)
class Row:
    case: str
    kernel: str
    ours: str
    problem: str


def _describe(error: StructureError | None) -> str:
    return "pass" if error is None else f"reject {error.errno}: {error.message}"


def _table(rows: list[Row]) -> str:
    if not rows:
        return ""
    head = Row("case", "kernel", "ours", "problem")
    widths = [max(len(getattr(r, f)) for r in [head, *rows]) for f in ("case", "kernel", "ours")]
    return "\n".join(f"{r.case:<{widths[0]}}  {r.kernel:<{widths[1]}}  {r.ours:<{widths[2]}}  {r.problem}"
                     for r in [head, *rows])


@pytest.fixture(scope="module")
def corpus() -> list[tuple[v.Case, Program]]:
    return [(case, program_of(case)) for case in v.load_corpus() if case.verdict is not None]


# --- the corpus -------------------------------------------------------------------------


def test_structure_agrees_with_the_kernel_on_the_corpus(corpus):
    rows: list[Row] = []
    claimed = accepted = other = 0
    coverage: dict[str, int] = {m.template: 0 for m in CLAIMED}
    for case, program in corpus:
        ours = check_structure(program)
        expected = case.expected
        kernel = expected.describe()
        if case.verdict == v.ACCEPT:
            accepted += 1
            if ours is not None:
                rows.append(Row(case.name, kernel, _describe(ours), "rejects what the kernel accepts"))
            continue
        message = M.find_message(case.error, CLAIMED)
        if message is not None:
            claimed += 1
            coverage[message.template] += 1
            if ours is None or (ours.message, ours.errno) != (case.error, case.errno):
                rows.append(Row(case.name, kernel, _describe(ours), "wrong structural verdict"))
        else:
            other += 1
            if ours is not None:
                rows.append(Row(case.name, kernel, _describe(ours), "kernel got past the structural checks"))
    table = _table(rows)
    print(f"\nstructural layer vs kernel: {accepted} accepted, {claimed} claimed rejects, {other} other rejects, "
          f"{len(rows)} disagreements")
    print("claimed messages seen in the corpus:")
    for template, count in coverage.items():
        print(f"  {count:3d}  {template}")
    if table:
        print(table)
    assert claimed >= 40 and accepted >= 150, "the corpus shrank"
    assert not rows, "\n" + table


def test_instruction_checks_agree_with_the_kernel_on_the_corpus(corpus):
    """For rejects with a do_check field message: the structure passes and
    the first reachable instruction (in slot order) that fails
    ``instruction_error`` fails with the kernel's line.  (The corpus programs
    are built so the malformed instruction is the first one reached.)"""
    rows: list[Row] = []
    claimed = 0
    for case, program in corpus:
        message = M.find_message(case.error, CLAIMED_AT_INSN) if case.verdict == v.REJECT else None
        if message is None:
            continue
        claimed += 1
        if check_structure(program) is not None:
            rows.append(Row(case.name, case.expected.describe(), _describe(check_structure(program)),
                            "structure rejects"))
            continue
        cfg = ControlFlowGraph(program)
        errors = [e for e in (instruction_error(program, pc) for pc in sorted(cfg.reachable)) if e]
        first = errors[0] if errors else None
        if first is None or (first.message, first.errno) != (case.error, case.errno):
            rows.append(Row(case.name, case.expected.describe(), _describe(first), "wrong field check"))
    table = _table(rows)
    print(f"\ninstruction field checks vs kernel: {claimed} claimed rejects, {len(rows)} disagreements")
    if table:
        print(table)
    assert claimed >= 20
    assert not rows, "\n" + table


def test_reserved_fields_in_a_dead_branch_are_not_a_structural_error(corpus):
    """Why the field checks are not in check_structure: the kernel accepts a
    malformed instruction that abstract interpretation never reaches."""
    case, program = next((c, p) for c, p in corpus if c.name == "enc-reserved-in-dead-branch")
    assert case.verdict == v.ACCEPT
    assert check_structure(program) is None
    assert instruction_error(program, 2).message == "BPF_ALU uses reserved fields"


# --- generated programs in the live kernel -------------------------------------------------

# Instruction shapes for structural_programs: (name, weight).
_SHAPES = ["alu"] * 4 + ["cond"] * 3 + ["ja", "exit", "lddw", "lddw", "call", "helper", "ld_abs", "ldx",
                                         "opcode"]


@st.composite
def structural_programs(draw) -> Program:
    """Programs of one to three subprograms that mostly look right — jumps
    inside their subprogram, subprograms ending in exit, calls to subprogram
    starts — with, now and then, each of the mistakes the structural layer
    knows: jumps and calls anywhere (out of range, into lddw tails, into
    other subprograms), malformed lddw pairs and pseudo sources, unknown
    opcodes, LDX reserved fields, LD_ABS and tail calls in subprograms."""
    drafts: list[tuple] = []  # (shape, fields..., target spec)
    firsts: list[int] = []
    for _ in range(draw(st.integers(1, 3))):
        firsts.append(len(drafts))
        for _ in range(draw(st.integers(0, 5))):
            drafts.append((draw(st.sampled_from(_SHAPES)), len(firsts) - 1))
        drafts.append((draw(st.sampled_from(["exit"] * 6 + ["ja", "alu"])), len(firsts) - 1))
    slots, at = [], 0
    for shape, _ in drafts:
        slots.append(at)
        at += 2 if shape == "lddw" else 1
    total = at
    lddw_tails = [slots[i] + 1 for i, (shape, _) in enumerate(drafts) if shape == "lddw"]

    def target(sub: int) -> int:
        how = draw(st.sampled_from(["local"] * 6 + ["any", "tail", "far"]))
        if how == "local":
            return draw(st.sampled_from([slots[i] for i, d in enumerate(drafts) if d[1] == sub]))
        if how == "tail" and lddw_tails:
            return draw(st.sampled_from(lddw_tails))
        if how == "far":
            return draw(st.sampled_from([-1, -3, total, total + 5]))
        return draw(st.integers(0, total - 1))

    def subprogram_entry() -> int:
        if draw(st.integers(0, 5)) == 0:
            return target(0)
        return draw(st.sampled_from([slots[f] for f in firsts]))

    insns: list[Instruction] = []
    for (shape, sub), pc in zip(drafts, slots):
        if shape == "alu":
            insns.append(Instruction(draw(st.sampled_from([0xB7, 0x07, 0xBF])), draw(st.integers(0, 9)),
                                     0, 0, draw(st.integers(-4, 4))))
        elif shape == "cond":
            insns.append(Instruction(draw(st.sampled_from([0x15, 0x55, 0xA5, 0x16])), draw(st.integers(0, 3)),
                                     0, target(sub) - pc - 1, draw(st.integers(0, 3))))
        elif shape == "ja":
            insns.append(Instruction(0x05, off=target(sub) - pc - 1))
        elif shape == "exit":
            insns.append(Instruction(0x95))
        elif shape == "lddw":
            src = draw(st.sampled_from([0, 0, 4, 7]))
            imm = subprogram_entry() - pc - 1 if src == 4 else draw(st.integers(0, 3))
            tail = draw(st.sampled_from([Instruction(0, imm=5)] * 5 + [Instruction(0x95), Instruction(0, off=1)]))
            insns += [Instruction(0x18, draw(st.integers(0, 3)), src, 0, imm), tail]
        elif shape == "call":
            insns.append(Instruction(0x85, src=1, imm=subprogram_entry() - pc - 1))
        elif shape == "helper":
            insns.append(Instruction(0x85, imm=draw(st.sampled_from([12, 5, 7]))))
        elif shape == "ld_abs":
            insns.append(Instruction(draw(st.sampled_from([0x30, 0x28, 0x50])), imm=draw(st.integers(0, 8))))
        elif shape == "ldx":
            insns.append(Instruction(draw(st.sampled_from([0x61, 0x61, 0x21, 0x99])), 0, 1, 0,
                                     draw(st.sampled_from([0, 0, 3]))))
        else:
            insns.append(Instruction(draw(st.sampled_from([0x00, 0x8D, 0x8F, 0x96, 0xE5, 0xFF, 0x0D]))))
    return Program(insns, prog_type="socket_filter")


@pytest.mark.kernel
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(program=structural_programs())
def test_generated_programs_get_the_kernels_structural_verdict(program):
    """Loaded in the live kernel: where we reject, the kernel rejects with the
    same line and errno; where we pass, the kernel's complaint (if any) is
    not a structural one."""
    from kernel_support import require_kernel
    from ebpfvm.kernel import Rejected, load_and_run_isolated

    require_kernel()
    ours = check_structure(program)
    if ours is None:
        # Past check_cfg the kernel interprets; keep loops (possibly long) out.
        assume(not ControlFlowGraph(program).back_edges)
    outcome = load_and_run_isolated(program.to_bytes(), "socket_filter", run=False, timeout=20)
    assert outcome.kind != "crashed", outcome
    listing = "\n".join(f"{pc}: {insn}" for pc, insn in enumerate(program.instructions))
    if ours is not None:
        assert isinstance(outcome, Rejected), f"kernel accepted, we said {ours}\n{listing}"
        assert (outcome.error_line, v.errno_name(outcome.errno)) == (ours.message or "", ours.errno), listing
    elif isinstance(outcome, Rejected):
        assert M.find_message(outcome.error_line, CLAIMED) is None, f"kernel: {outcome.error_line}\n{listing}"


# --- rules the corpus cannot show ------------------------------------------------------------


def prog(*insns: Instruction, **kw) -> Program:
    return Program(insns, **kw)


MOV0 = Instruction(0xB7, 0, 0, 0, 0)
EXIT = Instruction(0x95)


def ja(off: int) -> Instruction:
    return Instruction(0x05, off=off)


def call_local(imm: int) -> Instruction:
    return Instruction(0x85, src=1, imm=imm)


def test_program_size_limits():
    assert check_structure(prog()) == StructureError(None, None, "E2BIG", "bpf_prog_load")
    big = prog(*([MOV0] * 4096), EXIT)
    assert check_structure(big) is None
    assert check_structure(big, privileged=False) == StructureError(None, None, "E2BIG", "bpf_prog_load")
    assert check_structure(prog(*([MOV0] * 4095), EXIT), privileged=False) is None


def test_unprivileged_back_edge_is_the_first_the_dfs_meets():
    loop = prog(MOV0, Instruction(0x07, 0, 0, 0, 1), Instruction(0xA5, 0, 0, -2, 4), EXIT)
    assert check_structure(loop) is None
    error = check_structure(loop, privileged=False)
    assert (error.message, error.insn, error.errno) == ("back-edge from insn 2 to 1", 2, "EINVAL")
    assert check_structure(prog(MOV0, ja(-1)), privileged=False).message == "back-edge from insn 1 to 1"


def test_unprivileged_loads_may_not_call_subprograms():
    calls = prog(MOV0, call_local(1), EXIT, MOV0, EXIT)
    assert check_structure(calls) is None
    error = check_structure(calls, privileged=False)
    assert (error.message, error.errno, error.insn) == (M.CALLS_NEED_CAP_BPF.template, "EPERM", 1)
    kfunc = prog(MOV0, Instruction(0x85, src=2, imm=1234), EXIT)
    assert check_structure(kfunc) is None  # kfuncs are not judged structurally
    assert check_structure(kfunc, privileged=False).errno == "EPERM"


def test_too_many_subprograms():
    def program(n: int) -> Program:
        # main calls n - 1 subprograms, each "exit"
        main = [call_local(n - 1)] * (n - 1)  # the call at i goes to n + i
        return prog(*main, EXIT, *([EXIT] * (n - 1)))

    assert check_structure(program(256)) is None
    error = check_structure(program(257))
    assert (error.message, error.errno, error.insn) == ("too many subprograms", "E2BIG", 255)


def test_too_many_maps():
    maps = [MapDefinition(f"m{i}", "hash", 4, 8, 1) for i in range(65)]
    insns = []
    for i in range(65):
        insns += [Instruction(0x18, 1, 1, 0, i), Instruction(0)]
    insns += [MOV0, EXIT]
    error = check_structure(Program(insns, maps=maps))
    assert (error.message, error.errno, error.insn) == (
        "The total number of maps per program has reached the limit of 64", "E2BIG", 128)
    assert check_structure(Program(insns[2:], maps=maps)) is None


def test_map_references_without_map_definitions_are_not_judged():
    p = prog(Instruction(0x18, 1, 2, 0, 7), Instruction(0, imm=1 << 30), MOV0, EXIT)
    assert check_structure(p) is None
    with_map = Program(p.instructions, maps=[MapDefinition("m", "array", 4, 8, 1)] * 8)
    assert check_structure(with_map).message == "direct value offset of 1073741824 is not allowed"


def test_passes_run_in_the_kernels_order():
    # check_subprogs (jump out of range) before resolve_pseudo_ldimm64 (LDX reserved)
    p = prog(Instruction(0x61, 0, 1, 0, 7), ja(5), EXIT)
    assert check_structure(p).message == "jump out of range from insn 1 to 7"
    # resolve_pseudo_ldimm64 reports the first bad slot, whatever the kind
    p = prog(MOV0, Instruction(0xFF), Instruction(0x61, 0, 1, 0, 7), EXIT)
    assert check_structure(p).message == "unknown opcode ff"
    p = prog(MOV0, Instruction(0x61, 0, 1, 0, 7), Instruction(0xFF), EXIT)
    assert check_structure(p).message == "BPF_LDX uses reserved fields"
    # resolve before check_cfg: the unknown opcode wins over unreachable code
    p = prog(MOV0, EXIT, Instruction(0xFF), EXIT)
    assert check_structure(p).message == "unknown opcode ff"
    # check_abnormal_return comes after every jump has been checked
    p = prog(MOV0, call_local(1), ja(9), Instruction(0x30, imm=0), EXIT)
    assert check_structure(p).message == "jump out of range from insn 2 to 12"


def test_lddw_pairs():
    assert check_structure(prog(MOV0, EXIT, Instruction(0x18, imm=1))).message == \
        "last insn is not an exit or jmp"
    assert check_structure(prog(Instruction(0x18), Instruction(0x95), EXIT)).message == \
        "invalid bpf_ld_imm64 insn"
    assert check_structure(prog(Instruction(0x18), Instruction(0, off=1), EXIT)).message == \
        "invalid bpf_ld_imm64 insn"
    assert check_structure(prog(Instruction(0x18, src=9), Instruction(0), EXIT)).message == \
        "unrecognized bpf_ld_imm64 insn"
    assert check_structure(prog(Instruction(0x18, src=5), Instruction(0, imm=3), EXIT)).message == \
        "unrecognized bpf_ld_imm64 insn"
    # the second slot's imm is free for plain constants, and its opcode 0 is not "unknown"
    assert check_structure(prog(Instruction(0x18), Instruction(0, imm=-1), EXIT)) is None


def test_kernel_opcode_table():
    for known in (0x07, 0x0F, 0x87, 0xD4, 0xDC, 0xD7, 0x05, 0x06, 0x85, 0x95, 0xE5, 0x18, 0x20, 0x40,
                  0x61, 0x81, 0xC3, 0xDB, 0xCB, 0xD3, 0x62, 0x7A):
        assert known in KERNEL_OPCODES, hex(known)
    for unknown in (0x00, 0x8D, 0x0D, 0x0E, 0x86, 0x96, 0xDF, 0x8F, 0x8C, 0x99, 0x38, 0x58, 0xE7, 0xF5, 0xE6,
                    0x19, 0xE4):
        assert unknown not in KERNEL_OPCODES, hex(unknown)


@pytest.mark.parametrize("insn, message", [
    (Instruction(0x07, 0, 1, 0, 1), "BPF_ALU uses reserved fields"),
    (Instruction(0x0F, 0, 1, 0, 1), "BPF_ALU uses reserved fields"),
    (Instruction(0x0F, 0, 1, 1, 0), "BPF_ALU uses reserved fields"),  # off=1 is only sdiv/smod
    (Instruction(0x3F, 0, 1, 1, 0), None),
    (Instruction(0x87, 0, 0, 0, 1), "BPF_NEG uses reserved fields"),
    (Instruction(0xD4, 0, 0, 0, 8), "BPF_END uses reserved fields"),
    (Instruction(0xD7, 0, 0, 0, 64), None),
    (Instruction(0xBC, 0, 1, 32, 0), "BPF_MOV uses reserved fields"),  # movsx32 only in ALU64
    (Instruction(0xBF, 0, 1, 32, 0), None),
    (Instruction(0xB7, 0, 1, 0, 0), "BPF_MOV uses reserved fields"),
    (Instruction(0xBF, 0, 1, 1, 2), "addr_space_cast insn can only convert between address space 1 and 0"),
    (Instruction(0xBF, 0, 1, 1, 1),
     "addr_space_cast insn can only be used in a program that has an associated arena"),
    (Instruction(0x63, 10, 1, -8, 1), "BPF_STX uses reserved fields"),
    (Instruction(0x62, 10, 1, -8, 1), "BPF_ST uses reserved fields"),
    (Instruction(0xDB, 10, 1, -8, 0x02), "BPF_ATOMIC uses invalid atomic opcode 02"),
    (Instruction(0xDB, 10, 1, -8, -1), "BPF_ATOMIC uses invalid atomic opcode ffffffff"),
    (Instruction(0xD3, 10, 1, -8, 0x00), "invalid atomic operand size"),
    (Instruction(0xD3, 1, 10, -8, 0x100), None),  # load-acquire of a byte
    (Instruction(0x85, 1, 0, 0, 5), "BPF_CALL uses reserved fields"),
    (Instruction(0x85, 0, 3, 0, 5), "BPF_CALL uses reserved fields"),
    (Instruction(0x85, 0, 2, 1, 5), None),  # kfunc: off selects the module BTF
    (Instruction(0x05, 0, 0, 0, 1), "BPF_JA uses reserved fields"),
    (Instruction(0x06, 0, 0, 1, 0), "BPF_JA uses reserved fields"),
    (Instruction(0x95, 0, 0, 0, 1), "BPF_EXIT uses reserved fields"),
    (Instruction(0x15, 1, 2, 0, 0), "BPF_JMP/JMP32 uses reserved fields"),
    (Instruction(0x1E, 1, 2, 0, 3), "BPF_JMP/JMP32 uses reserved fields"),
    (Instruction(0xE5, 0, 0, 0, 3), "invalid may_goto imm 3"),
    (Instruction(0x30, 1, 0, 0, 0), "BPF_LD_[ABS|IND] uses reserved fields"),
    (Instruction(0x40, 0, 1, 0, 0), None),
    (Instruction(0x18, 0, 0, 1, 0), "BPF_LD_IMM64 uses reserved fields"),
    (Instruction(0x61, 0, 1, 0, 0), None),
])
def test_instruction_field_checks(insn, message):
    program = Program([insn, Instruction(0), EXIT] if insn.opcode == 0x18 else [insn, EXIT],
                      prog_type="socket_filter")
    error = instruction_error(program, 0)
    assert (error.message if error else None) == message
    if error:
        assert M.find_message(error.message, CLAIMED_AT_INSN) is not None


def test_instruction_checks_that_depend_on_the_program():
    ld_abs = Instruction(0x30, 0, 0, 0, 0)
    assert instruction_error(Program([ld_abs, EXIT], prog_type="xdp"), 0).message == \
        "BPF_LD_[ABS|IND] instructions not allowed for this program type"
    assert instruction_error(Program([ld_abs, EXIT]), 0) is None  # program type unknown
    cast = Instruction(0xBF, 0, 1, 1, 1)
    arena = MapDefinition("a", "arena", 0, 0, 1)
    with_arena = Program([Instruction(0x18, 1, 1, 0, 0), Instruction(0), cast, EXIT], maps=[arena])
    assert instruction_error(with_arena, 2) is None
    unresolved = Program([Instruction(0x18, 1, 1, 0, 3), Instruction(0), cast, EXIT])
    assert instruction_error(unresolved, 2) is None


def test_conditional_jumps_read_dst_before_their_field_check():
    error = instruction_error(prog(Instruction(0x1D, 3, 2, 0, 7), EXIT), 0)
    assert error.reads_first == (3,) and error.check == "check_cond_jmp_op"
    assert instruction_error(prog(Instruction(0x07, 0, 1, 0, 1), EXIT), 0).reads_first == ()


def test_message_templates():
    assert M.UNKNOWN_OPCODE(code=0x8D) == "unknown opcode 8d"
    assert M.UNKNOWN_OPCODE.matches("unknown opcode 00")
    assert not M.UNKNOWN_OPCODE.matches("unknown opcode 00 ")
    assert M.JUMP_OUT_OF_RANGE.matches("jump out of range from insn 1 to -1")
    assert M.find_message("invalid func unknown#999999") is None
    assert M.find_message(None) is None
    assert M.find_message("unreachable insn 7") is M.UNREACHABLE_INSN
    templates = [m.template for m in M.STRUCTURAL + M.INSTRUCTION]
    assert len(templates) == len(set(templates))


@given(program=valid_programs())
def test_structure_errors_are_well_formed(program):
    error = check_structure(program)
    if error is None:
        return
    assert error.message is None or M.find_message(error.message, CLAIMED) is not None
    assert error.insn is None or 0 <= error.insn < len(program)
    assert error.errno in ("EINVAL", "E2BIG", "EPERM", M.ENOTSUPP)


@given(program=valid_programs())
def test_privilege_only_adds_rejections(program):
    """Whatever a privileged load refuses, an unprivileged one refuses too."""
    if check_structure(program) is not None:
        assert check_structure(program, privileged=False) is not None
