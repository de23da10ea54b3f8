"""The machine: registers, memory, call frames and the dispatch loop.

``Interpreter(program)`` decodes the program once (``decode.decode``) into a
list of closures bound to its ``Machine``; ``Interpreter.run`` resets the
machine and executes. Reuse one ``Interpreter`` to run a program many times;
``run()`` is the one-shot convenience. An Interpreter is not re-entrant: a
helper must not run the same Interpreter recursively.

Conventions (those of the conformance suite and the kernel's interpreter):

* At entry r1 = address of the input memory and r2 = its length; with no
  input memory r1 = 0 (a NULL pointer: dereferencing it faults) and r2 = 0.
  r10 = top of frame 0's 512-byte stack; r0 and r3-r9 are 0.
* ``call local`` saves the caller's r1-r10, gives the callee a fresh zeroed
  512-byte stack (r10 = its top), and at the callee's exit restores them;
  only r0 carries the result back. So r6-r9 are preserved and r1-r5 keep the
  caller's values, exactly as in the kernel interpreter (each call is a new
  C frame with its own register array).
* Helper calls leave r1-r5 unchanged (again as the kernel interpreter does;
  the verifier treats them as clobbered, so valid programs cannot observe it).
* At most 8 frames (``MAX_CALL_FRAMES``, the kernel's MAX_CALL_FRAMES).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

from ..errors import BudgetExhausted, CallDepthExceeded, ProgramFault
from ..helpers.defaults import shared_default_registry
from ..helpers.env import HelperEnv
from ..helpers.registry import HelperRegistry
from ..isa.instruction import Instruction
from ..memory import MEM_BASE, STACK_SIZE, MemoryMap, Region, stack_frame_base, stack_frame_name
from ..program import Program
from .decode import decode
from .faults import NotAMap
from .result import RunResult
from .trace import TraceEntry

DEFAULT_BUDGET = 1_000_000
MAX_CALL_FRAMES = 8
MEM_REGION = "mem"

# resolve_pseudo(pc, lddw head, lddw tail) -> value, or None if it cannot.
PseudoResolver = Callable[[int, Instruction, Instruction], "int | None"]
TraceSink = Callable[[TraceEntry], None]

_ZERO_STACK = bytes(STACK_SIZE)


class Frame(NamedTuple):
    """A caller's state saved by ``call local``."""

    return_pc: int
    call_pc: int
    saved: tuple[int, ...]  # the caller's r1..r10


class Halt(Exception):
    """Raised by ``exit`` in the main frame to leave the dispatch loop."""


class Machine:
    """The state one program runs on. Ops close over ``regs`` (a list, mutated
    in place), ``memory`` and the bound methods below."""

    def __init__(self, program: Program, helpers: HelperRegistry, env: HelperEnv,
                 resolve_pseudo: PseudoResolver | None = None) -> None:
        self.program = program
        self.regs: list[int] = [0] * 11
        self.memory = MemoryMap()
        self.frames: list[Frame] = []
        self.helpers = helpers
        self.env = env
        self.resolve_pseudo = resolve_pseudo
        self.pc = 0  # set before helper calls, for faults raised inside helpers
        self.packet: bytearray = bytearray()  # what LD_ABS/LD_IND read
        # Map handle (the address ``lddw rX, map_fd i`` loads) -> map object;
        # filled by the runtime that binds a program to its maps.
        self.maps: dict[int, Any] = {}
        self.stacks = [Region(stack_frame_name(k), stack_frame_base(k), bytearray(STACK_SIZE))
                       for k in range(MAX_CALL_FRAMES)]

    def map_at(self, handle: int) -> Any:
        """The map whose handle a helper received (``NotAMap`` if none)."""
        found = self.maps.get(handle)
        if found is None:
            raise NotAMap(self.pc, handle)
        return found

    @property
    def depth(self) -> int:
        """Index of the running frame (0 = main program)."""
        return len(self.frames)

    def reset(self, mem: bytes) -> None:
        """Unmap the previous run's regions, map ``mem`` and frame 0's stack,
        and set the entry registers."""
        for region in list(self.memory):
            self.memory.remove_region(region)
        self.frames.clear()
        data = bytearray(mem)
        self.packet = data
        regs = self.regs
        regs[:] = [0] * 11
        if data:
            self.memory.add_region(MEM_REGION, MEM_BASE, data)
            regs[1], regs[2] = MEM_BASE, len(data)
        regs[10] = self._map_stack(0)

    def input_memory(self) -> bytes:
        region = self.memory.get(MEM_REGION)
        return bytes(region.data) if region is not None else b""

    def _map_stack(self, depth: int) -> int:
        stack = self.stacks[depth]
        stack.data[:] = _ZERO_STACK
        self.memory.add(stack)
        return stack.end

    # -- frames (called by the call/exit ops) -------------------------------------
    def push_frame(self, return_pc: int, call_pc: int) -> None:
        depth = len(self.frames) + 1
        if depth >= MAX_CALL_FRAMES:
            raise CallDepthExceeded(call_pc, MAX_CALL_FRAMES)
        regs = self.regs
        self.frames.append(Frame(return_pc, call_pc, tuple(regs[1:11])))
        regs[10] = self._map_stack(depth)

    def pop_frame(self) -> int:
        """Return from the running subprogram; the pc to continue at."""
        frame = self.frames.pop()
        self.memory.remove_region(self.stacks[len(self.frames) + 1])
        self.regs[1:11] = frame.saved
        return frame.return_pc

    def exit_frame(self, pc: int) -> int:
        """What ``exit`` at ``pc`` does: return to the caller, or halt."""
        if self.frames:
            return self.pop_frame()
        raise Halt(pc)

    def halt(self, pc: int) -> int:
        raise Halt(pc)


class Interpreter:
    """A program decoded for repeated runs."""

    def __init__(self, program: Program | bytes | Sequence[Instruction], *,
                 helpers: HelperRegistry | None = None, env: HelperEnv | None = None,
                 resolve_pseudo: PseudoResolver | None = None) -> None:
        self.program = as_program(program)
        self.program.check()  # ops rely on every jump target being a valid slot
        self.machine = Machine(self.program, helpers if helpers is not None else shared_default_registry(),
                               env if env is not None else HelperEnv(), resolve_pseudo)
        self.code = decode(self.program, self.machine)

    def run(self, mem: bytes = b"", budget: int = DEFAULT_BUDGET, *,
            trace: bool | TraceSink | None = None) -> RunResult:
        """Execute from slot 0 until the main frame exits.

        ``trace``: True collects a ``TraceEntry`` per executed instruction into
        ``RunResult.trace``; a callable receives each entry instead. A fault
        raised during the run carries ``executed`` (instructions completed) and,
        when tracing into a list, ``trace`` (the entries so far).
        """
        m = self.machine
        m.reset(mem)
        entries: list[TraceEntry] | None = [] if trace is True else None
        try:
            if trace:
                executed = self._loop_traced(budget, entries.append if entries is not None else trace)
            else:
                executed = self._loop(budget)
        except ProgramFault as fault:
            if entries is not None:
                fault.trace = entries
            raise
        return RunResult(r0=m.regs[0], executed=executed, mem=m.input_memory(), regs=tuple(m.regs),
                         trace=entries)

    def _loop(self, budget: int) -> int:
        code = self.code
        pc = 0
        n = -1
        try:
            for n in range(budget):
                pc = code[pc]()
        except Halt:
            return n + 1
        except ProgramFault as fault:
            fault.executed = n
            raise
        raise _exhausted(pc, budget)

    def _loop_traced(self, budget: int, record: TraceSink) -> int:
        code, regs, frames, insns = self.code, self.machine.regs, self.machine.frames, self.program.instructions
        pc = 0
        n = -1
        at = depth = 0
        try:
            for n in range(budget):
                at, depth = pc, len(frames)
                pc = code[at]()
                record(TraceEntry(n, at, depth, insns[at], tuple(regs)))
        except Halt:
            record(TraceEntry(n, at, depth, insns[at], tuple(regs)))
            return n + 1
        except ProgramFault as fault:
            fault.executed = n
            raise
        raise _exhausted(pc, budget)


def _exhausted(pc: int, budget: int) -> BudgetExhausted:
    fault = BudgetExhausted(pc, budget)
    fault.executed = budget
    return fault


def as_program(program: Program | bytes | Sequence[Instruction]) -> Program:
    if isinstance(program, Program):
        return program
    if isinstance(program, (bytes, bytearray, memoryview)):
        return Program.from_bytes(bytes(program))
    return Program(list(program))


def run(program: Program | bytes | Sequence[Instruction], mem: bytes = b"", budget: int = DEFAULT_BUDGET, *,
        helpers: HelperRegistry | None = None, trace: bool | TraceSink | None = None,
        env: HelperEnv | None = None, resolve_pseudo: PseudoResolver | None = None) -> RunResult:
    """Run ``program`` once on input memory ``mem`` (see ``Interpreter``)."""
    interpreter = Interpreter(program, helpers=helpers, env=env, resolve_pseudo=resolve_pseudo)
    return interpreter.run(mem, budget, trace=trace)
