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

The dispatch loop lives on the ``Machine`` (``execute``) so that helpers can
re-enter it: ``call_function`` runs a subprogram to its ``exit`` and returns
r0 (bpf_loop and other callbacks), and ``replace_program`` switches to
another decoded program in place of the running frame (bpf_tail_call). All
of it draws on one step counter, so nested and replaced code share the run's
budget.
"""

from __future__ import annotations

from operator import length_hint
from typing import Any, Callable, Iterator, NamedTuple, NoReturn, Sequence

from ..errors import BudgetExhausted, CallDepthExceeded, ProgramFault
from ..helpers.defaults import shared_default_registry
from ..helpers.env import HelperEnv
from ..helpers.registry import HelperRegistry
from ..isa.instruction import Instruction
from ..memory import MEM_BASE, STACK_SIZE, MemoryMap, Region, stack_frame_base, stack_frame_name
from ..program import Program
from .decode import decode
from .faults import NotAMap
from .ops import MASK64, Op
from .result import RunResult
from .trace import TraceEntry

DEFAULT_BUDGET = 1_000_000
MAX_CALL_FRAMES = 8
MEM_REGION = "mem"

# resolve_pseudo(pc, lddw head, lddw tail) -> value, or None if it cannot.
PseudoResolver = Callable[[int, Instruction, Instruction], "int | None"]
TraceSink = Callable[[TraceEntry], None]

_ZERO_STACK = bytes(STACK_SIZE)
# Return pc of the frame ``call_function`` pushes: no slot has it, so the
# nested loop sees it come back from the callee's exit and stops.
_CALLBACK_RETURN = -1


class Frame(NamedTuple):
    """A caller's state saved by ``call local``."""

    return_pc: int
    call_pc: int
    saved: tuple[int, ...]  # the caller's r1..r10


class Halt(Exception):
    """Raised by ``exit`` in the main frame to leave the dispatch loop."""


class ProgramSwitch(Exception):
    """Raised when the running code changes (a tail call, or the return from a
    frame a tail call replaced): the loop reloads ``Machine.code`` and goes on
    at ``pc``. Not a fault."""

    def __init__(self, pc: int) -> None:
        super().__init__(pc)
        self.pc = pc


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
        # The decoded ops being run (``Interpreter`` or a runtime sets it) and
        # the run's step counter, shared with nested loops.
        self.code: list[Op] = []
        self.steps: Iterator[int] = iter(())
        self.budget = 0
        self.record: TraceSink | None = None
        self.callback_depth = 0  # nested call_function loops running
        # Frames a tail call replaced: (depth, program, code) to return to
        # when that frame exits.
        self.replaced: list[tuple[int, Program, list[Op]]] = []
        # Per-run state of a runtime (program type, packet, tail calls); None
        # when a bare Interpreter runs.
        self.run_state: Any = None

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
        self.replaced.clear()
        self.callback_depth = 0
        self.env.begin_run()
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
        depth = len(self.frames) + 1
        self.memory.remove_region(self.stacks[depth])
        self.regs[1:11] = frame.saved
        if self.replaced and self.replaced[-1][0] == depth:
            # The frame was a tail call's target: the caller's code resumes.
            _, self.program, self.code = self.replaced.pop()
            raise ProgramSwitch(frame.return_pc)
        return frame.return_pc

    def exit_frame(self, pc: int) -> int:
        """What ``exit`` at ``pc`` does: return to the caller, or halt."""
        if self.frames:
            return self.pop_frame()
        raise Halt(pc)

    def halt(self, pc: int) -> int:
        raise Halt(pc)

    # -- the dispatch loop ----------------------------------------------------------
    def execute(self, budget: int, record: TraceSink | None = None, pc: int = 0) -> int:
        """Run ``self.code`` from ``pc`` until the main frame exits; the number
        of instructions executed (lddw counts once, nested calls included).

        ``record`` receives a ``TraceEntry`` per executed instruction. A fault
        carries ``executed``: the instructions completed before it.
        """
        steps = self.steps = iter(range(budget))
        self.budget, self.record = budget, record
        while True:
            code = self.code
            try:
                if record is None:
                    for _ in steps:
                        pc = code[pc]()
                else:
                    pc = self._dispatch_traced(code, pc, steps, record)
            except Halt:
                return budget - length_hint(steps)
            except ProgramSwitch as switch:
                pc = switch.pc
                continue
            except ProgramFault as fault:
                if not hasattr(fault, "executed"):
                    fault.executed = budget - length_hint(steps) - 1
                raise
            raise _exhausted(pc, budget)

    def _dispatch_traced(self, code: list[Op], pc: int, steps: Iterator[int], record: TraceSink,
                         stop: int | None = None) -> int:
        """The loop with a ``TraceEntry`` per step; returns the pc when the
        steps run out or when it reaches ``stop``."""
        regs, frames, insns = self.regs, self.frames, self.program.instructions
        at = depth = 0
        n = -1
        try:
            for n in steps:
                at, depth = pc, len(frames)
                pc = code[at]()
                record(TraceEntry(n, at, depth, insns[at], tuple(regs)))
                if pc == stop:
                    return pc
        except (Halt, ProgramSwitch):
            record(TraceEntry(n, at, depth, insns[at], tuple(regs)))
            raise
        return pc

    def call_function(self, target: int, args: Sequence[int]) -> int:
        """Call the subprogram at slot ``target`` of the running code with
        ``args`` in r1.. and return its r0: a nested run of the dispatch loop
        in a new frame, drawing on the same budget (for helpers that take
        callbacks). The caller's r1-r10 are intact afterwards."""
        self.push_frame(_CALLBACK_RETURN, self.pc)
        regs = self.regs
        for i, value in enumerate(args, 1):
            regs[i] = value & MASK64
        code, steps, pc = self.code, self.steps, target
        self.callback_depth += 1
        try:
            if self.record is None:
                for _ in steps:
                    pc = code[pc]()
                    if pc < 0:
                        return regs[0]
            elif self._dispatch_traced(code, pc, steps, self.record, _CALLBACK_RETURN) < 0:
                return regs[0]
        finally:
            self.callback_depth -= 1
        raise _exhausted(pc, self.budget)

    def replace_program(self, program: Program, code: list[Op]) -> NoReturn:
        """Continue with ``program`` (decoded as ``code``) in place of the
        running frame, from its first slot with a fresh stack: a tail call.
        Registers are left as they are (r1 still holds the context)."""
        depth = len(self.frames)
        if depth and not (self.replaced and self.replaced[-1][0] == depth):
            self.replaced.append((depth, self.program, self.code))
        self.program, self.code = program, code
        stack = self.stacks[depth]
        stack.data[:] = _ZERO_STACK
        self.regs[10] = stack.end
        raise ProgramSwitch(0)


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
        m.program, m.code = self.program, self.code
        entries: list[TraceEntry] | None = [] if trace is True else None
        record = (entries.append if entries is not None else trace) if trace else None
        try:
            executed = m.execute(budget, record)
        except ProgramFault as fault:
            if entries is not None:
                fault.trace = entries
            raise
        return RunResult(r0=m.regs[0], executed=executed, mem=m.input_memory(), regs=tuple(m.regs),
                         trace=entries)


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
