"""``Program``: the one model every consumer (interpreter, verifier, JIT, kernel) takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

from .errors import DecodeError, InstructionIssue
from .isa.forms import FORMS, Kind
from .isa.instruction import SLOT_SIZE, Instruction
from .isa.targets import slot_target
from .isa.validate import find_issues, lddw_tails

if TYPE_CHECKING:
    from .maps.definition import MapDefinition


@dataclass(frozen=True)
class LineInfo:
    """Source position of the instruction at slot ``insn`` (from .BTF.ext line_info)."""

    insn: int
    file: str
    line: int
    column: int
    text: str = ""


@dataclass(frozen=True)
class FunctionParam:
    """One parameter of a function, as its BTF prototype declares it: a
    ``scalar`` (integer or enum), a ``pointer`` (to ``target``, named as the
    kernel's messages do, e.g. "STRUCT __sk_buff", of ``size`` bytes; None
    when BTF cannot size it) or ``other`` (struct by value, float...)."""

    kind: str
    target: str = ""
    size: int | None = None


@dataclass(frozen=True)
class FunctionInfo:
    """A function of the program (from .BTF.ext func_info): its first slot,
    name and linkage, and its prototype. The kernel verifies a global
    function on its own, for any arguments of its prototype."""

    insn: int
    name: str
    is_global: bool
    params: tuple[FunctionParam, ...] = ()
    returns_scalar: bool = True  # the return type is an integer or enum


@dataclass(frozen=True, eq=False)
class Program:
    """A decoded eBPF program: one ``Instruction`` per 8-byte slot.

    ``labels`` maps slot indices to names given in assembler source, so the
    disassembler can print them back. ``source`` names where the program came
    from (a path), for error messages.

    Programs loaded from an object file also carry what the object says about
    them: ``section``, ``prog_type`` and ``expected_attach_type`` (libbpf /
    kernel names such as "xdp", "sched_cls"), ``license``, the object's
    ``maps`` (lddw map references are indices into it), ``line_info`` and
    ``functions`` (each function's BTF linkage and prototype).
    """

    instructions: tuple[Instruction, ...]
    labels: Mapping[int, str] = field(default_factory=dict)
    source: str | None = None
    name: str = ""
    section: str = ""
    prog_type: str | None = None
    expected_attach_type: str | None = None
    license: str = ""
    maps: tuple["MapDefinition", ...] = ()
    line_info: tuple[LineInfo, ...] = ()
    functions: tuple[FunctionInfo, ...] = ()

    def __init__(self, instructions: Sequence[Instruction], *, labels: Mapping[int, str] | None = None,
                 source: str | None = None, name: str = "", section: str = "", prog_type: str | None = None,
                 expected_attach_type: str | None = None, license: str = "",
                 maps: Sequence["MapDefinition"] = (), line_info: Sequence[LineInfo] = (),
                 functions: Sequence[FunctionInfo] = ()) -> None:
        object.__setattr__(self, "instructions", tuple(instructions))
        object.__setattr__(self, "labels", dict(labels or {}))
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "section", section)
        object.__setattr__(self, "prog_type", prog_type)
        object.__setattr__(self, "expected_attach_type", expected_attach_type)
        object.__setattr__(self, "license", license)
        object.__setattr__(self, "maps", tuple(maps))
        object.__setattr__(self, "line_info", tuple(line_info))
        object.__setattr__(self, "functions", tuple(functions))

    def with_instructions(self, instructions: Sequence[Instruction],
                          labels: Mapping[int, str] | None = None) -> "Program":
        """A copy with other instructions (and ``labels``) and the same metadata."""
        return Program(instructions, labels=labels, source=self.source, name=self.name, section=self.section,
                       prog_type=self.prog_type, expected_attach_type=self.expected_attach_type,
                       license=self.license, maps=self.maps, line_info=self.line_info, functions=self.functions)

    # -- bytes -------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, *, source: str | None = None, strict: bool = True) -> "Program":
        """Decode raw bytecode. With ``strict`` (the default), raise ``DecodeError``
        listing every malformed slot; without it, keep whatever decodes so that a
        verifier can report the problems in its own words."""
        if len(data) % SLOT_SIZE:
            issue = InstructionIssue(len(data) // SLOT_SIZE,
                                     f"truncated instruction: {len(data)} bytes is not a multiple of {SLOT_SIZE}")
            raise DecodeError([issue], source)
        insns = [Instruction.decode(data[i:i + SLOT_SIZE]) for i in range(0, len(data), SLOT_SIZE)]
        program = cls(insns, source=source)
        if strict:
            program.check()
        return program

    def to_bytes(self) -> bytes:
        return b"".join(insn.encode() for insn in self.instructions)

    # -- validity ----------------------------------------------------------
    def issues(self) -> list[InstructionIssue]:
        """Every ISA-level problem (empty for a well-formed program)."""
        cached = self.__dict__.get("_issues")
        if cached is None:
            cached = find_issues(self.instructions)
            object.__setattr__(self, "_issues", cached)
        return list(cached)

    def check(self) -> "Program":
        """Raise ``DecodeError`` unless the program is well formed; return self."""
        issues = self.issues()
        if issues:
            raise DecodeError(issues, self.source)
        return self

    # -- structure ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self.instructions)

    def __getitem__(self, pc: int) -> Instruction:
        return self.instructions[pc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and self.instructions == other.instructions

    def __hash__(self) -> int:
        return hash(self.instructions)

    def subprogram_entries(self) -> tuple[int, ...]:
        """Slot indices where subprograms start: 0, every local call target and
        every function address taken with lddw (callbacks), sorted."""
        entries = {0}
        tails = lddw_tails(self.instructions)
        for pc, insn in enumerate(self.instructions):
            if pc in tails or FORMS.get(insn.opcode) is None:
                continue
            is_call = FORMS[insn.opcode].kind is Kind.CALL
            if is_call or FORMS[insn.opcode].kind is Kind.LDDW:
                target = slot_target(insn, pc)
                if target is not None:
                    entries.add(target)
        return tuple(sorted(e for e in entries if 0 <= e < len(self.instructions)))
