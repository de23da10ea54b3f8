"""Functions of an object and linking them into programs.

A program is one entry function plus every function it reaches through
bpf-to-bpf calls and callback addresses, appended after its own code in the
order libbpf uses (depth first: a callee is appended at its first call and
its own callees right after it), with each call's and each ``lddw func``'s
imm rewritten to the callee's new position.  Each program gets its own copy
of the functions it uses, so their positions may differ between programs.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Iterator

from ebpfvm.btf import BtfExt, CoreRelocation, LineRecord
from ebpfvm.isa.instruction import SLOT_SIZE, Instruction
from ebpfvm.isa.load_store import LddwSource
from ebpfvm.program import LineInfo

from .errors import ElfFormatError, RelocationError
from .reader import ElfReader, Section
from .relocations import CodeRef, SectionCode

TEXT = ".text"


@dataclass(frozen=True)
class Function:
    name: str
    section: int
    section_name: str
    start: int  # first slot in its section
    length: int  # slots
    entry: bool  # an entry point (program), not only a subprogram

    @property
    def key(self) -> tuple[int, int]:
        return (self.section, self.start)


@dataclass(frozen=True)
class Placement:
    """Where ``function`` landed in a linked program."""

    function: Function
    base: int


@dataclass(frozen=True)
class LinkedProgram:
    entry: Function
    instructions: tuple[Instruction, ...]
    placements: tuple[Placement, ...]
    line_info: tuple[LineInfo, ...]
    core_relocations: tuple[tuple[int, CoreRelocation], ...]  # (slot in the program, record)
    # For BPF_PROG_LOAD with the object's BTF: (slot, FUNC type id) per function,
    # empty unless every placed function has one; and line_info as
    # (slot, file_name_off, line_off, line << 10 | column).
    func_info: tuple[tuple[int, int], ...] = ()
    btf_line_info: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def labels(self) -> dict[int, str]:
        return {p.base: p.function.name for p in self.placements}


def find_functions(reader: ElfReader, sections: list[Section]) -> list[Function]:
    """Every function of the executable ``sections``: their FUNC symbols,
    or the whole section as one program when it has none (hand-written or
    old objects)."""
    functions: list[Function] = []
    for section in sections:
        n_slots = section.size // SLOT_SIZE
        symbols = [s for s in reader.symbols_in(section.index) if s.type == "STT_FUNC"]
        if not symbols and section.name != TEXT and n_slots:
            functions.append(Function(_sanitize(section.name), section.index, section.name, 0, n_slots, True))
            continue
        for sym in sorted(symbols, key=lambda s: (s.value, s.index)):
            if sym.value % SLOT_SIZE or sym.size % SLOT_SIZE or sym.size == 0 \
                    or sym.value > section.size or sym.size > section.size - sym.value:
                raise ElfFormatError(reader.path, f"function {sym.name!r} [{sym.value:#x}, +{sym.size:#x}) "
                                     f"is not whole instructions inside the section ({section.size} bytes)",
                                     section=section.name, offset=sym.value)
            entry = section.name != TEXT and sym.bind != "STB_LOCAL"
            functions.append(Function(sym.name, section.index, section.name, sym.value // SLOT_SIZE,
                                      sym.size // SLOT_SIZE, entry))
    return functions


def _sanitize(section_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", section_name.lstrip("?")) or "prog"


def link(path: str, entry: Function, code: dict[int, SectionCode], functions: dict[tuple[int, int], Function],
         ext: ExtIndex) -> LinkedProgram:
    out: list[Instruction] = []
    placements: list[Placement] = []
    placed: dict[tuple[int, int], int] = {}

    def place(fn: Function) -> Iterator[tuple[int, CodeRef]]:
        placed[fn.key] = len(out)
        placements.append(Placement(fn, len(out)))
        out.extend(code[fn.section].insns[fn.start:fn.start + fn.length])
        refs = code[fn.section].code_refs
        return iter([(slot, refs[slot]) for slot in sorted(refs) if fn.start <= slot < fn.start + fn.length])

    # Depth first with an explicit stack: a chain of calls as long as the
    # object has functions cannot exhaust Python's recursion limit.
    stack = [(entry, place(entry))]
    while stack:
        fn, refs = stack[-1]
        nxt = next(refs, None)
        if nxt is None:
            stack.pop()
            continue
        slot, ref = nxt
        callee = functions.get((ref.section, ref.slot))
        if callee is None:
            where = code[ref.section].section.name if ref.section in code else f"#{ref.section}"
            raise RelocationError(path, f"{'call' if ref.kind == 'call' else 'function address'} target "
                                  f"{where}+{ref.slot * SLOT_SIZE:#x} is not the start of a function",
                                  section=fn.section_name, offset=slot * SLOT_SIZE)
        if callee.key not in placed:
            stack.append((callee, place(callee)))
        pc = placed[fn.key] + slot - fn.start
        relative = placed[callee.key] - pc - 1
        insn = out[pc]
        src = insn.src if ref.kind == "call" else LddwSource.FUNC
        out[pc] = Instruction(insn.opcode, insn.dst, src, insn.off, relative)
        if ref.kind == "func":
            tail = out[pc + 1]
            out[pc + 1] = Instruction(tail.opcode, tail.dst, tail.src, tail.off, 0)
    return LinkedProgram(entry, tuple(out), tuple(placements), **ext.rebase(placements))


class ExtIndex:
    """.BTF.ext records grouped by section and sorted by offset, so that
    finding those of one function is a binary search."""

    def __init__(self, btf_ext: BtfExt | None) -> None:
        self.lines: dict[str, tuple[list[int], list[LineRecord]]] = {}
        self.cores: dict[str, tuple[list[int], list[CoreRelocation]]] = {}
        self.funcs: dict[tuple[str, int], int] = {}
        if btf_ext is None:
            return
        for func in btf_ext.func_info:
            self.funcs.setdefault((func.section, func.insn_off), func.type_id)
        for table, records in ((self.lines, btf_ext.line_info), (self.cores, btf_ext.core_relocations)):
            grouped: dict[str, list] = {}
            for rec in records:
                grouped.setdefault(rec.section, []).append(rec)
            for section, recs in grouped.items():
                recs.sort(key=lambda r: r.insn_off)
                table[section] = ([r.insn_off for r in recs], recs)  # type: ignore[assignment]

    @staticmethod
    def _range(table: dict, section: str, lo: int, hi: int) -> list:  # type: ignore[type-arg]
        offsets, recs = table.get(section, ([], []))
        return recs[bisect_left(offsets, lo):bisect_left(offsets, hi)]

    def rebase(self, placements: list[Placement]) -> dict[str, tuple]:  # type: ignore[type-arg]
        """Line info, CO-RE records and func info of the placed functions, at
        their slots in the program (keyword arguments for ``LinkedProgram``)."""
        lines: list[LineInfo] = []
        raw_lines: list[tuple[int, int, int, int]] = []
        cores: list[tuple[int, CoreRelocation]] = []
        funcs: list[tuple[int, int]] = []
        for p in placements:
            fn = p.function
            lo, hi = fn.start * SLOT_SIZE, (fn.start + fn.length) * SLOT_SIZE
            for rec in self._range(self.lines, fn.section_name, lo, hi):
                if rec.insn_off % SLOT_SIZE == 0:
                    slot = p.base + rec.insn_off // SLOT_SIZE - fn.start
                    lines.append(LineInfo(slot, rec.file, rec.line, rec.column, rec.text))
                    raw_lines.append((slot, rec.file_name_off, rec.line_off, (rec.line << 10) | rec.column))
            for core in self._range(self.cores, fn.section_name, lo, hi):
                cores.append((p.base + core.insn_off // SLOT_SIZE - fn.start, core))
            type_id = self.funcs.get((fn.section_name, lo))
            if type_id is not None:
                funcs.append((p.base, type_id))
        lines.sort(key=lambda li: li.insn)
        raw_lines.sort()
        cores.sort(key=lambda c: c[0])
        funcs.sort()
        complete = len(funcs) == len(placements)
        return {"line_info": tuple(lines), "core_relocations": tuple(cores),
                "func_info": tuple(funcs) if complete else (),
                "btf_line_info": tuple(raw_lines) if complete else ()}
