"""``ebpfvm run OBJ.o``: run one program of an ELF object in the runtime.

    ebpfvm run OBJ.o [--section NAME | --program NAME] [--packet FILE | --ctx FILE]
                     [--map NAME=FILE]... [--budget N] [--trace]

Prints the return value (with the XDP/tc verdict's name), the packet when the
program changed it, the maps whose contents changed (entry by entry, before
-> after), trace_printk output and ring buffer / perf event records.

``--map NAME=FILE`` fills map NAME before the run from raw bytes: for an
array, consecutive values (index 0, 1, ...); for a hash-like map, consecutive
key+value records. Files must hold whole values / records.
"""

from __future__ import annotations

from typing import Any, Sequence, TextIO

from ..errors import InputFileError, UserInputError
from ..interp.trace import TraceEntry, format_entry
from ..loader import read_file_bytes
from ..maps import BpfMap, MapError
from ..program import Program
from .result import ProgramRun
from .runtime import Runtime

# Maps whose entries are compared before and after a run: the others hold
# programs, other maps or a stream of records, shown otherwise.
_NOT_COMPARED = ("prog_array", "array_of_maps", "hash_of_maps", "ringbuf", "perf_event_array", "queue", "stack")
MAX_COMPARED_ENTRIES = 65536  # larger maps are not diffed (a note says so)
_ARRAY_LIKE = ("array", "percpu_array")


def run_object_command(path: str, *, section: str | None = None, program: str | None = None,
                       packet: str | None = None, ctx: str | None = None, maps: Sequence[str] = (),
                       budget: int = 1_000_000, trace: bool = False, out: TextIO, engine: str = "interp") -> int:
    """The ``run`` subcommand for an ELF object; returns the exit status (0).
    Bad input raises ``UserInputError``, a misbehaving program ``ProgramFault``
    (the CLI turns both into one line)."""
    from ..elf import load_object

    obj = load_object(path)
    runtime = Runtime.for_object(obj)
    prog = _choose_program(path, runtime, obj.programs, section, program)
    for spec in maps:
        _fill_map(runtime, spec)
    packet_in = read_file_bytes(packet) if packet is not None else None
    ctx_in = read_file_bytes(ctx) if ctx is not None else None
    before = {name: _snapshot(m) for name, m in runtime.maps.items()}
    result = runtime.run(prog, packet=packet_in, ctx=ctx_in, budget=budget,
                         trace=_trace_printer(runtime, out) if trace else None, engine=engine)
    if engine == "jit" and runtime.fallback_reason:
        out.write(f"note: ran on the interpreter: {runtime.fallback_reason}\n")
    _report(out, runtime, result, packet_in, before)
    return 0


def _choose_program(path: str, runtime: Runtime, programs: Sequence[Program], section: str | None,
                    name: str | None) -> Program:
    if name is not None:
        found = [p for p in programs if p.name == name]
        what = f"program {name!r}"
    elif section is not None:
        found = [p for p in programs if p.section == section]
        what = f"section {section!r}"
    else:
        found = list(programs)
        what = "a program"
    listing = ", ".join(f"{p.name} ({p.section})" for p in programs) or "none"
    if not found:
        raise InputFileError(path, f"no {what} in the object (programs: {listing})")
    if len(found) > 1:
        raise InputFileError(path, f"{len(found)} programs match; choose one with --program (programs: {listing})")
    return runtime.program(found[0])


def _fill_map(runtime: Runtime, spec: str) -> None:
    name, sep, file = spec.partition("=")
    if not sep or not name or not file:
        raise UserInputError(f"--map wants NAME=FILE, got {spec!r}")
    bpf_map = runtime.maps.get(name)
    if bpf_map is None:
        raise UserInputError(f"--map {name}: no such map (maps: {', '.join(runtime.maps) or 'none'})")
    data = read_file_bytes(file)
    try:
        if bpf_map.map_type in _ARRAY_LIKE:
            size = bpf_map.value_bytes
            _check_whole(file, len(data), size, "value")
            for i in range(0, len(data), size):  # bounded by the file size
                bpf_map.update(i // size, data[i:i + size])
        elif bpf_map.map_type not in _NOT_COMPARED:
            size = bpf_map.key_size + bpf_map.value_bytes
            _check_whole(file, len(data), size, "key+value record")
            for i in range(0, len(data), size):
                bpf_map.update(data[i:i + bpf_map.key_size], data[i + bpf_map.key_size:i + size])
        else:
            raise UserInputError(f"--map {name}: a {bpf_map.map_type} map cannot be filled from a file")
    except MapError as exc:
        raise InputFileError(file, f"filling map {name}: {exc}") from None


def _check_whole(file: str, length: int, size: int, what: str) -> None:
    if size == 0 or length % size:
        raise InputFileError(file, f"{length} bytes is not a whole number of {size}-byte {what}s")


def _snapshot(bpf_map: BpfMap) -> dict[bytes, Any] | None:
    if bpf_map.map_type in _NOT_COMPARED or bpf_map.max_entries > MAX_COMPARED_ENTRIES:
        return None
    return {bytes(k): v for k, v in bpf_map.items()}


def _trace_printer(runtime: Runtime, out: TextIO):  # type: ignore[no-untyped-def]
    previous: list[tuple[int, ...] | None] = [None]
    last: list[Program] = []

    def show(entry: TraceEntry) -> None:
        # After a tail call the machine runs another program; the entry of the
        # call itself still belongs to the caller.
        current = runtime.machine.program
        candidates = [current, *last]
        program = next((p for p in candidates if entry.pc < len(p) and p[entry.pc] == entry.insn), current)
        last[:] = [program]
        out.write(format_entry(entry, program, previous[0]) + "\n")
        previous[0] = entry.regs
    return show


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, list):
        return " ".join(f"cpu{i}={_hex(v)}" for i, v in enumerate(value))
    return "(none)" if value is None else str(value)


def _report(out: TextIO, runtime: Runtime, result: ProgramRun, packet_in: bytes | None,
            before: dict[str, dict[bytes, Any] | None]) -> None:
    r0 = result.r0
    signed = r0 - (1 << 64) if r0 >> 63 else r0
    action = f" {result.action}" if result.action else ""
    out.write(f"r0 = {r0:#x} ({signed}){action}\n")
    if result.tail_calls:
        out.write(f"tail calls: {result.tail_calls} (returned from {result.program})\n")
    if result.redirect is not None:
        target = f"map {result.redirect.map} key {result.redirect.ifindex}" if result.redirect.map \
            else f"ifindex {result.redirect.ifindex}"
        out.write(f"redirect: {target} flags {result.redirect.flags:#x}\n")
    if result.packet is not None and (result.packet != packet_in or result.meta):
        out.write(f"packet ({len(result.packet)} bytes): {result.packet.hex()}\n")
        if result.meta:
            out.write(f"metadata ({len(result.meta)} bytes): {result.meta.hex()}\n")
    for name, bpf_map in runtime.maps.items():
        old = before.get(name)
        if old is None:
            continue
        new = _snapshot(bpf_map) or {}
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                out.write(f"map {name} [{key.hex()}]: {_hex(old.get(key))} -> {_hex(new.get(key))}\n")
    for line in result.trace:
        out.write(f"trace_printk: {line.rstrip(chr(10))}\n")
    for name, records in result.ringbuf_events.items():
        for record in records:
            out.write(f"ringbuf {name}: {_hex(record)}\n")
    for name, events in result.perf_events.items():
        for event in events:
            cpu, data = getattr(event, "cpu", None), getattr(event, "data", event)
            where = f" cpu {cpu}" if cpu is not None else ""
            out.write(f"perf {name}{where}: {_hex(data)}\n")
    for name, snap in before.items():
        bpf_map = runtime.maps[name]
        if snap is None and bpf_map.map_type not in _NOT_COMPARED:
            out.write(f"map {name}: {bpf_map.max_entries} entries, not compared\n")
