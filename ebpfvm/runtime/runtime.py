"""``Runtime``: programs, maps, helpers, environment and program types bound
together to run real programs.

    runtime = Runtime.for_object(load_object("xdp_firewall.o"))
    runtime.maps["blocked_ports"].update(53, 0)
    result = runtime.run("xdp_firewall", packet=frame)
    result.action, result.packet, result.trace

One ``Machine`` serves every program of the runtime: each program is decoded
once against it (with its own lddw resolution), so a tail call only swaps the
code the machine runs. Before each run the machine's memory is rebuilt: every
map bound in its window (``map_window(i)`` for map ``i`` of the runtime,
inner maps of maps of maps after them), the context as a region whose
accesses the program type checks and rewrites, the packet with its headroom,
and frame 0's stack; r1 holds the context's address.

A program without a type (assembled by hand) gets its context as plain
memory, as ``ebpfvm.run`` gives its input: r1 = address, r2 = length.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ..errors import ProgramFault, UserInputError
from ..helpers.defaults import shared_default_registry
from ..helpers.env import HelperEnv
from ..helpers.registry import HelperRegistry
from ..interp.decode import decode
from ..interp.machine import DEFAULT_BUDGET, Machine, TraceSink
from ..interp.ops import Op
from ..interp.trace import TraceEntry
from ..maps import BpfMap, MapDefinition, bind_maps, create_map
from ..memory import MEM_BASE, map_window
from ..program import Program
from ..progtypes import ProgType, get_prog_type
from ..progtypes.base import ContextSetup
from ..progtypes.skb import ETH_HLEN
from .context import CTX_BASE, CTX_REGION, CTX_WINDOW, ContextAccess, ContextRegion
from .packet import PacketBuffer
from .pseudo import make_resolver
from .result import ProgramRun
from .state import RunState


class UnknownProgram(UserInputError):
    """A program name the runtime does not hold."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"no program named {name!r} (programs: {', '.join(self.known) or 'none'})")


class Runtime:
    """Programs and the maps they share, ready to run.

    ``programs``: Programs (their ``name``, else their section, names them).
    ``maps``: BpfMap objects or MapDefinitions (created with ``create_map``),
    or a name -> map mapping; maps the programs' own ``maps`` name and that are
    not given are created from those definitions. A program's lddw map index
    ``i`` is the map named ``program.maps[i].name`` (a program with no map
    definitions indexes the runtime's maps directly). ``env`` (clock, seed,
    CPU, task, captured output) and ``helpers`` are injectable for
    reproducible runs.
    """

    def __init__(self, programs: Sequence[Program] = (), maps: Sequence[BpfMap | MapDefinition] |
                 Mapping[str, BpfMap] | None = None, *, helpers: HelperRegistry | None = None,
                 env: HelperEnv | None = None, num_cpus: int = 2) -> None:
        self.env = env if env is not None else HelperEnv()
        self.helpers = helpers if helpers is not None else shared_default_registry()
        self.num_cpus = num_cpus
        self.programs: dict[str, Program] = {}
        self._map_list: list[BpfMap] = []
        self._slots_filled: set[int] = set()
        given = maps.values() if isinstance(maps, Mapping) else (maps or ())
        for item in given:
            self._add_map(item if isinstance(item, BpfMap) else create_map(item, num_cpus=num_cpus))
        for program in programs:
            self._add_program(program)
        self._resolve_map_slots()
        first = next(iter(self.programs.values()), Program([]))
        self.machine = Machine(first, self.helpers, self.env)
        self._codes: dict[int, tuple[Program, list[Op]]] = {}
        self._jits: dict[int, Any] = {}
        # engine="jit": which engine the last run used, and why it fell back.
        self.last_engine = "interp"
        self.fallback_reason: str | None = None

    @classmethod
    def for_object(cls, obj: Any, *, helpers: HelperRegistry | None = None, env: HelperEnv | None = None,
                   num_cpus: int = 2) -> "Runtime":
        """A runtime for an object from ``ebpfvm.elf.load_object``: all its
        programs and all its maps (in the object's order)."""
        return cls(obj.programs, list(obj.maps), helpers=helpers, env=env, num_cpus=num_cpus)

    # -- programs and maps ---------------------------------------------------------
    @property
    def maps(self) -> dict[str, BpfMap]:
        return {m.name: m for m in self._map_list}

    def _add_program(self, program: Program) -> str:
        """Hold ``program`` and create the maps it names that the runtime lacks."""
        name = program.name or program.section or f"prog{len(self.programs)}"
        existing = self.programs.get(name)
        if existing is not None and existing is not program:
            name = f"{name}#{len(self.programs)}"
        self.programs[name] = program
        known = {m.name for m in self._map_list}
        for definition in program.maps:
            if definition.name not in known:
                self._add_map(create_map(definition, num_cpus=self.num_cpus))
                known.add(definition.name)
        return name

    def _add_map(self, bpf_map: BpfMap) -> None:
        if any(m.name == bpf_map.name for m in self._map_list):
            raise UserInputError(f"two maps named {bpf_map.name!r}")
        self._map_list.append(bpf_map)

    def _resolve_map_slots(self) -> None:
        """Maps of maps name their initial inner maps: fill them, once."""
        by_name = self.maps
        for bpf_map in self._map_list:
            resolve = getattr(bpf_map, "resolve_initial_slots", None)
            if resolve is not None and id(bpf_map) not in self._slots_filled:
                resolve(by_name)
                self._slots_filled.add(id(bpf_map))

    def program(self, which: Program | str) -> Program:
        """A program by name (symbol, or section) or the Program itself (added
        to the runtime if it is new)."""
        if isinstance(which, Program):
            if all(p is not which for p in self.programs.values()):
                self._add_program(which)
                self._resolve_map_slots()
            return which
        found = self.programs.get(which)
        if found is None:
            found = next((p for p in self.programs.values() if p.section == which), None)
        if found is None:
            raise UnknownProgram(which, self.programs)
        return found

    def name_of(self, program: Program) -> str:
        return next((name for name, p in self.programs.items() if p is program), program.name)

    def code_for(self, program: Program) -> list[Op]:
        """``program`` decoded for this runtime's machine (once)."""
        cached = self._codes.get(id(program))
        if cached is not None:
            return cached[1]
        program.check()
        machine = self.machine
        saved = machine.program, machine.resolve_pseudo
        machine.program, machine.resolve_pseudo = program, make_resolver(self._map_locator(program))
        try:
            code = decode(program, machine)
        finally:
            machine.program, machine.resolve_pseudo = saved
        self._codes[id(program)] = (program, code)  # the Program is kept alive with its id
        return code

    def _map_locator(self, program: Program):  # type: ignore[no-untyped-def]
        windows = {m.name: i for i, m in enumerate(self._map_list)}
        names = [d.name for d in program.maps]

        def locate(index: int) -> tuple[BpfMap, int] | None:
            if names:
                position = windows.get(names[index]) if 0 <= index < len(names) else None
            else:
                position = index if 0 <= index < len(self._map_list) else None
            if position is None:
                return None
            return self._map_list[position], map_window(position)
        return locate

    def tail_call_target(self, slot: Any) -> tuple[Program, list[Op]] | None:
        """What a prog_array slot (a Program, a program name or None) runs."""
        if slot is None:
            return None
        if isinstance(slot, str):
            program = self.programs.get(slot)
            if program is None:
                program = next((p for p in self.programs.values() if p.section == slot), None)
            if program is None:
                return None  # a name this runtime does not hold: like an empty slot
        elif isinstance(slot, Program):
            program = self.program(slot)
        else:
            return None
        return program, self.code_for(program)

    # -- running -------------------------------------------------------------------
    def run(self, program: Program | str, *, packet: bytes | None = None, ctx: bytes | None = None,
            budget: int = DEFAULT_BUDGET, trace: bool | TraceSink | None = None,
            prog_type: str | None = None, engine: str = "interp") -> ProgramRun:
        """Run ``program`` once on ``packet`` (an Ethernet frame, for the
        packet types) and/or ``ctx`` (the context struct's bytes, zero-padded;
        for the skb and XDP types the fields a BPF_PROG_TEST_RUN context input
        may set). ``prog_type`` overrides the program's own. ``trace``: True
        collects the instruction trace into ``ProgramRun.steps``, a callable
        receives each ``TraceEntry``.

        ``engine="jit"`` runs native code (``ebpfvm.jit``, checked mode) on the
        same memory (tail calls and callbacks included); what it cannot run
        (callx, tracing) runs on the interpreter and ``fallback_reason`` says why.

        Raises ``ProgramFault`` subclasses when the program misbehaves and
        ``UserInputError`` subclasses for an input the program type refuses.
        """
        prog = self.program(program)
        type_name = prog_type or prog.prog_type
        ptype = get_prog_type(type_name) if type_name else None
        code = self.code_for(prog)
        machine = self.machine
        machine.reset(b"")
        machine.maps = bind_maps(machine.memory, self._map_list)
        state = self._map_context(machine, prog, ptype, packet, ctx)
        machine.run_state = state
        machine.program, machine.code = prog, code

        printk_start = len(self.env.trace_log)
        perf_start = {m.name: len(m.events) for m in self._map_list if m.map_type == "perf_event_array"}
        entries: list[TraceEntry] | None = [] if trace is True else None
        record = (entries.append if entries is not None else trace) if trace else None
        jit = None
        if engine == "jit":
            from ..jit.runtime_glue import jit_for  # noqa: PLC0415 - the JIT loads llvmlite

            jit, self.fallback_reason = jit_for(self, prog, trace)
        elif engine != "interp":
            raise UserInputError(f"unknown engine {engine!r} (interp or jit)")
        self.last_engine = "jit" if jit is not None else "interp"
        try:
            executed = jit.run_machine(machine, budget) if jit is not None else machine.execute(budget, record)
        except ProgramFault as fault:
            if entries is not None:
                fault.trace = entries
            fault.program = self.name_of(machine.program)
            raise
        finally:
            machine.run_state = None
        return self._result(machine, state, ptype, executed, entries, printk_start, perf_start)

    def _map_context(self, machine: Machine, prog: Program, ptype: ProgType | None, packet: bytes | None,
                     ctx: bytes | None) -> RunState:
        """Map the packet and the context into the fresh memory; r1 = context."""
        regs = machine.regs
        if ptype is None:
            # No program type: the context is plain memory, as ebpfvm.run gives it.
            data = bytes(ctx if ctx is not None else packet or b"")
            if data:
                machine.memory.add_region(CTX_REGION, MEM_BASE, bytearray(data))
                regs[1], regs[2] = MEM_BASE, len(data)
            return RunState(self, None, None, None, self.env.cpu_id)
        setup: ContextSetup = ptype.build_context(ptype, packet, ctx)
        buffer = None
        if setup.packet is not None and ptype.packet is not None:
            layout = ptype.packet
            buffer = PacketBuffer.build(machine.memory, setup.packet, meta=setup.meta, headroom=layout.headroom,
                                        frame_size=layout.frame_size, tailroom=layout.tailroom,
                                        head=setup.hidden_head)
            # LD_ABS/LD_IND (socket filters, tc) read from data on.
            machine.packet = buffer.view() if not setup.meta else bytearray()
        # The region spans a whole window past the struct, so that every
        # access near the context reaches the layout's check and is refused
        # by field name rather than as a stray address.
        data = bytearray(setup.ctx).ljust(max(CTX_WINDOW, len(setup.ctx)), b"\0")
        access = ContextAccess(ptype.layout_for(prog.expected_attach_type), data, buffer)
        machine.memory.add(ContextRegion(CTX_REGION, CTX_BASE, data, access))
        regs[1] = CTX_BASE
        return RunState(self, ptype, buffer, access, self.env.cpu_id)

    def _result(self, machine: Machine, state: RunState, ptype: ProgType | None, executed: int,
                entries: list[TraceEntry] | None, printk_start: int, perf_start: dict[str, int]) -> ProgramRun:
        r0 = machine.regs[0]
        buffer = state.packet
        packet = meta = None
        if buffer is not None and ptype is not None and ptype.packet is not None:
            # An L3 program's input still starts with the Ethernet header it never saw.
            head = b"" if ptype.packet.l2 else buffer.head_bytes(ETH_HLEN)
            packet = head + buffer.packet_bytes()
            meta = buffer.meta_bytes()
        if state.context is not None:
            ctx_out = state.context.snapshot()
        else:
            region = machine.memory.get(CTX_REGION)
            ctx_out = bytes(region.data) if region is not None else b""
        ringbuf = {m.name: m.consume() for m in self._map_list if m.map_type == "ringbuf"}
        perf = {m.name: list(m.events[perf_start[m.name]:]) for m in self._map_list
                if m.map_type == "perf_event_array"}
        return ProgramRun(
            r0=r0, action=ptype.action_name(r0) if ptype is not None else None, packet=packet, ctx=ctx_out,
            executed=executed, meta=meta or b"", trace=list(self.env.trace_log[printk_start:]),
            ringbuf_events={k: v for k, v in ringbuf.items() if v}, perf_events={k: v for k, v in perf.items() if v},
            tail_calls=state.tail_calls, program=self.name_of(machine.program), redirect=state.redirect,
            steps=entries)


def run_program(program: Program, *, packet: bytes | None = None, ctx: bytes | None = None,
                maps: Sequence[BpfMap | MapDefinition] | Mapping[str, BpfMap] | None = None,
                budget: int = DEFAULT_BUDGET, trace: bool | TraceSink | None = None, prog_type: str | None = None,
                env: HelperEnv | None = None, helpers: HelperRegistry | None = None) -> ProgramRun:
    """Run one program once in a fresh ``Runtime`` (maps from ``maps`` and the
    program's own definitions)."""
    runtime = Runtime([program], maps, env=env, helpers=helpers)
    return runtime.run(program, packet=packet, ctx=ctx, budget=budget, trace=trace, prog_type=prog_type)
