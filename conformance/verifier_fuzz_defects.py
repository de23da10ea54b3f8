"""Known defects of the kernel's verifier that the verifier fuzzer runs into.

A disagreement between ``ebpfvm.verifier`` and the kernel is either a bug of
ours or a defect of the kernel.  The defects we know of are listed here, each
with a recogniser, so that a fuzzing campaign reports them as such instead of
as bugs of ours: a disagreement that a recogniser claims is counted under the
defect's name and never fails a campaign.

``EXCLUDED`` lists kernel defects the generator deliberately avoids, with why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ebpfvm.isa import AluOp, InsnClass, Source

OURS_ACCEPTS_KERNEL_REJECTS = "ours-accepts-kernel-rejects"
OURS_REJECTS_KERNEL_ACCEPTS = "ours-rejects-kernel-accepts"


@dataclass(frozen=True)
class KnownDefect:
    """A kernel verifier defect: ``kinds`` are the disagreement kinds it shows
    as; ``suspect(instructions)`` says whether a program could show it (then
    the kernel's log at level 2 is fetched), and ``recognise(instructions,
    kernel_log)`` whether that log shows the defect happening."""

    name: str
    kernel: str
    kinds: tuple[str, ...]
    description: str
    suspect: Callable[[Sequence], bool]
    recognise: Callable[[Sequence, str], bool]


def subprogram_starts(instructions: Sequence) -> list[int]:
    """The first slot of every bpf-to-bpf call target (not the main program)."""
    return sorted({pc + 1 + insn.imm for pc, insn in enumerate(instructions)
                   if insn.opcode == 0x85 and insn.src == 1})


_ADD64_X = InsnClass.ALU64 | Source.X | AluOp.ADD


def _scalar_plus_fp_slots(instructions: Sequence) -> list[int]:
    """Slots in subprograms computing ``rX += r10`` (a scalar plus the frame pointer)."""
    starts = subprogram_starts(instructions)
    if not starts:
        return []
    return [pc for pc, insn in enumerate(instructions)
            if pc >= starts[0] and insn.opcode == _ADD64_X and insn.src == 10 and insn.dst != 10]


# "12: frame1: R3=fp[0]-8 R10=fp0": the state before insn 12 in frame 1, R3 pointing into frame 0.
_STATE_LINE = re.compile(r"^(\d+): frame(\d+): (.*)$")


def _sum_lands_in_another_frame(instructions: Sequence, log: str) -> bool:
    """The level-2 log shows, right after a subprogram's ``rX += r10``, rX as
    a pointer into another frame (``fp[N]`` with N not the current frame)."""
    wanted = {pc + 1: instructions[pc].dst for pc in _scalar_plus_fp_slots(instructions)}
    for line in log.splitlines():
        match = _STATE_LINE.match(line)
        if match is None or int(match.group(1)) not in wanted:
            continue
        frame, regs = int(match.group(2)), match.group(3)
        other = re.search(rf"\bR{wanted[int(match.group(1))]}=fp\[(\d+)\]", regs)
        if other is not None and int(other.group(1)) != frame:
            return True
    return False


KNOWN_KERNEL_DEFECTS: tuple[KnownDefect, ...] = (
    KnownDefect(
        name="subprog-scalar-plus-fp-frame",
        kernel="6.18",
        kinds=(OURS_ACCEPTS_KERNEL_REJECTS, OURS_REJECTS_KERNEL_ACCEPTS),
        description=("`scalar += stack pointer` computed inside a called subprogram is tracked against the "
                     "caller's frame: the sum gets the pointer's type and offset but keeps the frame number "
                     "the scalar had, so accesses through it are checked against (and recorded in) another "
                     "frame's stack.  Recognised only from the kernel's own level-2 log showing the sum as "
                     "fp[N] of another frame right after the addition"),
        suspect=lambda instructions: bool(_scalar_plus_fp_slots(instructions)),
        recognise=_sum_lands_in_another_frame,
    ),
)


@dataclass(frozen=True)
class ExcludedDefect:
    name: str
    kernel: str
    why: str


EXCLUDED: tuple[ExcludedDefect, ...] = (
    ExcludedDefect(
        name="and-in-loop-oops",
        kernel="6.18 (this project's test machine)",
        why=("repeatedly AND-ing a scalar in [-1, 0] with a constant inside a loop (the CRC idiom "
             "`poly & -(crc & 1)`) Oopses the kernel verifier, which kills the loading process and can "
             "leave the kernel unstable; the generator never puts an AND in a loop body and "
             "verifier_fuzz_programs.and_in_loop refuses any program that has one before it is loaded"),
    ),
)


def suspects(instructions: Sequence) -> tuple[KnownDefect, ...]:
    """The known defects a program could show (their recognisers need the level-2 log)."""
    return tuple(d for d in KNOWN_KERNEL_DEFECTS if d.suspect(instructions))


def known_defect(kind: str, instructions: Sequence, kernel_log: str) -> KnownDefect | None:
    """The known kernel defect that explains a disagreement of ``kind``, given
    the kernel's level-2 log of the program, if any."""
    for defect in KNOWN_KERNEL_DEFECTS:
        if kind in defect.kinds and defect.suspect(instructions) and defect.recognise(instructions, kernel_log):
            return defect
    return None
