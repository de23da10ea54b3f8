"""Run a ``Program`` in the kernel with the interpreter's calling convention.

The interpreter (and the conformance suite) starts a program with r1 pointing
at the input memory and r2 holding its length, and reads the full 64-bit r0
at exit. The kernel runs only what its verifier accepts and truncates XDP
return values to 32 bits, so the program is wrapped before loading::

    prologue   r1 = &mem_map[0]      lddw, BPF_PSEUDO_MAP_VALUE: no lookup, no NULL check
               r2 = len(mem)
    program    unchanged, except that every exit of the main function becomes
               a jump to the epilogue (subprograms keep their exits)
    epilogue   *(u64 *)&result_map[0] = r0; return XDP_PASS

The input memory is the value of a one-entry array map, so loads and stores at
constant offsets below ``len(mem)`` pass the verifier, and the memory is read
back after the run. Loads happen in a forked child (see ``isolation``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..isa import InsnClass, Instruction, JmpOp, LddwSource, Mode, Size, lddw_tails
from ..isa.load_store import LDDW_OPCODE
from ..isa.alu import AluOp
from ..program import Program
from ..rewrite import insert_instructions
from .isolation import Accepted, Crashed, MapSpec, Rejected, load_and_run_isolated

XDP_PASS = 2
_MEM_MAP, _RESULT_MAP = 0, 1
_PACKET = bytes(64)  # XDP test runs need at least an Ethernet header of data
_EXIT = InsnClass.JMP | JmpOp.EXIT
_ZERO_KEY = bytes(4)


@dataclass(frozen=True)
class KernelExecution:
    """What the kernel made of a program: ``verdict`` is accepted, rejected or crashed."""

    verdict: str
    r0: int | None = None
    mem: bytes | None = None
    error_line: str = ""
    log: str = ""
    detail: str = ""


def _map_value_pointer(dst: int, map_index: int) -> tuple[Instruction, Instruction]:
    """lddw dst, &map[map_index].value[0]; the loader turns the index into an fd."""
    return (Instruction(LDDW_OPCODE, dst, LddwSource.MAP_VALUE, 0, map_index), Instruction(0))


def wrap_for_kernel(program: Program, mem_len: int) -> Program:
    """The program with the prologue and epilogue described above."""
    entries = program.subprogram_entries()
    main_end = entries[1] if len(entries) > 1 else len(program)
    epilogue = [*_map_value_pointer(1, _RESULT_MAP),
                Instruction(InsnClass.STX | Mode.MEM | Size.DW, 1, 0, 0, 0),
                Instruction(InsnClass.ALU64 | AluOp.MOV, 0, 0, 0, XDP_PASS),
                Instruction(_EXIT)]
    wrapped = list(insert_instructions(program, main_end, epilogue).instructions)
    tails = lddw_tails(wrapped)
    for pc in range(main_end):
        if wrapped[pc].opcode == _EXIT and pc not in tails:
            wrapped[pc] = Instruction(InsnClass.JMP | JmpOp.JA, 0, 0, main_end - pc - 1, 0)
    prologue = [*_map_value_pointer(1, _MEM_MAP),
                Instruction(InsnClass.ALU64 | AluOp.MOV, 2, 0, 0, mem_len)]
    return insert_instructions(program.with_instructions(wrapped), 0, prologue)


def run_in_kernel(program: Program, mem: bytes = b"", *, prog_flags: int = 0,
                  timeout: float = 30.0) -> KernelExecution:
    """Load and test-run ``program`` on ``mem`` in a forked child."""
    value_size = max(8, len(mem))
    maps = (MapSpec("array", 4, value_size, 1, initial=((_ZERO_KEY, mem.ljust(value_size, b"\0")),)),
            MapSpec("array", 4, 8, 1))
    wrapped = wrap_for_kernel(program, len(mem))
    outcome = load_and_run_isolated(wrapped.to_bytes(), "xdp", _PACKET, maps=maps, prog_flags=prog_flags,
                                    timeout=timeout)
    if isinstance(outcome, Rejected):
        return KernelExecution("rejected", error_line=outcome.error_line, log=outcome.log)
    if isinstance(outcome, Crashed):
        return KernelExecution("crashed", detail=outcome.detail or f"signal {outcome.signal}")
    assert isinstance(outcome, Accepted)
    if outcome.run_errno is not None:
        return KernelExecution("crashed", log=outcome.log, detail=f"test run failed with errno {outcome.run_errno}")
    mem_out = outcome.maps[_MEM_MAP].get(_ZERO_KEY, b"")[:len(mem)]
    r0 = int.from_bytes(outcome.maps[_RESULT_MAP].get(_ZERO_KEY, bytes(8)), "little")
    return KernelExecution("accepted", r0=r0, mem=mem_out, log=outcome.log)
