"""Apply an object's relocations to the code of one section.

What clang leaves for the loader (Documentation/bpf/llvm_reloc.rst):

* ``R_BPF_64_64`` on an ``lddw``: the address of a map (symbol in ``.maps``
  or legacy ``maps``), of global data (symbol in ``.data``/``.rodata``/
  ``.bss``..., plus the offset in the instruction's imm for section
  symbols), or of a function (callbacks for bpf_loop and friends).
* ``R_BPF_64_32`` on a ``call`` with src 1: a bpf-to-bpf call into another
  section (usually ``.text``); ``imm`` counts from the symbol.  Calls inside
  one section carry no relocation: their imm is already relative.
* ``R_BPF_64_ABS64``/``ABS32`` appear only in .BTF, .BTF.ext and DWARF,
  which we never relocate.

Map and data references are final here (lddw src 1 / src 2 with the map's
index, the contract shared with the kernel bridge and the runtime).  Code
references depend on where the linker puts each function, so they are only
recorded (``CodeRef``) and resolved per program by :mod:`.linking`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebpfvm.isa.instruction import SLOT_SIZE, Instruction
from ebpfvm.isa.jump import CallKind
from ebpfvm.isa.load_store import LddwSource

from .errors import RelocationError, UnsupportedFeatureError
from .maps import PlacedMap
from .reader import ElfReader, Section, Symbol

R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10
RELOCATION_NAMES = {R_BPF_NONE: "R_BPF_NONE", R_BPF_64_64: "R_BPF_64_64", R_BPF_64_ABS64: "R_BPF_64_ABS64",
                    R_BPF_64_ABS32: "R_BPF_64_ABS32", R_BPF_64_NODYLD32: "R_BPF_64_NODYLD32",
                    R_BPF_64_32: "R_BPF_64_32"}

LDDW = 0x18
CALL = 0x85


@dataclass(frozen=True)
class CodeRef:
    """A reference from an instruction to code: ``kind`` "call" (bpf-to-bpf
    call) or "func" (lddw of a function address), to slot ``slot`` of
    section ``section`` (an index)."""

    kind: str
    section: int
    slot: int


@dataclass(frozen=True)
class AppliedRelocation:
    """One relocation as the loader understood it (for inspect)."""

    section: str
    offset: int  # byte offset of the instruction in its section
    type: str
    symbol: str
    target: str  # "map blocked_nets", "map_value .rodata+4", "call .text+0x20 <shift>", ...


@dataclass
class SectionCode:
    """The instructions of one executable section, map and data references
    resolved, code references waiting for the linker."""

    section: Section
    insns: list[Instruction]
    code_refs: dict[int, CodeRef]


class MapLocator:
    """Which map a symbol in a maps or data section refers to."""

    def __init__(self, placed: list[PlacedMap]) -> None:
        self.placed = placed

    def find(self, section: int, offset: int) -> tuple[int, PlacedMap] | None:
        for index, p in enumerate(self.placed):
            if p.section != section:
                continue
            if p.origin == "data" or p.offset <= offset < p.offset + max(p.size, 1):
                return index, p
        return None


def _rel_name(kind: int) -> str:
    return RELOCATION_NAMES.get(kind, f"type {kind}")


class _Site:
    """Where a relocation applies, to build errors that name it."""

    def __init__(self, path: str, section: str, offset: int) -> None:
        self.path, self.section, self.offset = path, section, offset

    def fail(self, message: str, cls: type = RelocationError) -> Exception:
        return cls(self.path, message, section=self.section, offset=self.offset)


def relocate_section(reader: ElfReader, section: Section, maps: MapLocator,
                     symbol_names: dict[tuple[int, int], str]) -> tuple[SectionCode, list[AppliedRelocation]]:
    """Decode ``section`` and apply its relocations. ``symbol_names`` names
    function starts ((section index, slot) -> name) for the descriptions."""
    path, name = reader.path, section.name
    if section.size % SLOT_SIZE:
        raise RelocationError(path, f"code size {section.size} is not a multiple of {SLOT_SIZE}", section=name)
    data = section.data
    insns = [Instruction.decode(data[i:i + SLOT_SIZE]) for i in range(0, len(data), SLOT_SIZE)]
    code_refs: dict[int, CodeRef] = {}
    applied: list[AppliedRelocation] = []
    found = reader.relocations_for(section)
    rel_section, relocations = found if found else (name, [])
    relocated: set[int] = set()
    for rel in relocations:
        if rel.type == R_BPF_NONE:
            continue
        site = _Site(path, name, rel.offset)
        if rel.offset % SLOT_SIZE or rel.offset >= section.size:
            raise site.fail(f"relocation offset {rel.offset:#x} is not an instruction of the section "
                            f"({section.size} bytes)")
        slot = rel.offset // SLOT_SIZE
        if slot in relocated:
            raise site.fail("two relocations for one instruction")
        relocated.add(slot)
        sym = reader.symbol(rel.symbol, rel_section, rel.entry_offset)
        insn = insns[slot]
        target = _symbol_section(reader, sym, site)
        if insn.opcode == CALL:
            code_refs[slot], text = _call(sym, target, insn, rel.type, site, symbol_names)
        elif insn.opcode == LDDW:
            if rel.type != R_BPF_64_64:
                raise site.fail(f"{_rel_name(rel.type)} on an lddw (expected R_BPF_64_64)")
            if slot + 1 >= len(insns):
                raise site.fail("lddw in the last slot has no second half")
            text = _lddw(sym, target, insns, slot, maps, code_refs, site, symbol_names)
        else:
            raise site.fail(f"{_rel_name(rel.type)} against {sym.name or 'a section'} on an instruction with "
                            f"opcode {insn.opcode:#04x}, which is neither lddw nor call")
        applied.append(AppliedRelocation(name, rel.offset, _rel_name(rel.type), sym.name or target.name, text))
    # Calls inside one section carry no relocation: their imm is already relative.
    for slot, insn in enumerate(insns):
        if slot not in code_refs and insn.opcode == CALL and insn.src == CallKind.LOCAL:
            code_refs[slot] = CodeRef("call", section.index, slot + insn.imm + 1)
    return SectionCode(section, insns, code_refs), applied


def _symbol_section(reader: ElfReader, sym: Symbol, site: _Site) -> Section:
    if sym.shndx == 0:
        raise site.fail(f"extern symbol {sym.name!r} (a kfunc, __ksym or __kconfig variable) must be resolved "
                   f"against the running kernel, which this loader does not do", UnsupportedFeatureError)
    if not sym.defined:
        raise site.fail(f"symbol {sym.name!r} is in special section {sym.shndx:#x} "
                   f"(an uninitialized global without SEC? compile with -fno-common)")
    return reader.section(sym.shndx)


def _call(sym: Symbol, target: Section, insn: Instruction, rel_type: int, site: _Site,
          symbol_names: dict[tuple[int, int], str]) -> tuple[CodeRef, str]:
    if rel_type != R_BPF_64_32:
        raise site.fail(f"{_rel_name(rel_type)} on a call (expected R_BPF_64_32)")
    if insn.src != CallKind.LOCAL:
        raise site.fail(f"relocation on a call with src {insn.src} (only bpf-to-bpf calls, src 1, are relocated)")
    if not target.executable:
        raise site.fail(f"call to {sym.name!r} in {target.name}, which is not code")
    if sym.value % SLOT_SIZE:
        raise site.fail(f"call target symbol {sym.name!r} at {sym.value:#x} is not instruction-aligned")
    dest = sym.value // SLOT_SIZE + insn.imm + 1
    _check_code_slot(target, dest, "call", site)
    return CodeRef("call", target.index, dest), f"call {_code_name(target, dest, symbol_names)}"


def _lddw(sym: Symbol, target: Section, insns: list[Instruction], slot: int, maps: MapLocator,
          code_refs: dict[int, CodeRef], site: _Site, symbol_names: dict[tuple[int, int], str]) -> str:
    head, tail = insns[slot], insns[slot + 1]
    if target.executable:
        byte = sym.value + head.imm
        if byte % SLOT_SIZE:
            raise site.fail(f"function address {target.name}+{byte:#x} is not instruction-aligned")
        dest = byte // SLOT_SIZE
        _check_code_slot(target, dest, "function address", site)
        code_refs[slot] = CodeRef("func", target.index, dest)
        return f"func {_code_name(target, dest, symbol_names)}"
    found = maps.find(target.index, sym.value)
    if found is None:
        raise site.fail(f"lddw of {sym.name or target.name!r} in section {target.name}, which holds no map, "
                   f"global data or code")
    index, placed = found
    if placed.origin == "data":
        offset = sym.value + head.imm
        if not 0 <= offset <= placed.size:
            raise site.fail(f"global data offset {offset:#x} is outside {target.name} ({placed.size} bytes)")
        insns[slot] = Instruction(LDDW, head.dst, LddwSource.MAP_VALUE, head.off, index)
        insns[slot + 1] = Instruction(tail.opcode, tail.dst, tail.src, tail.off, offset)
        return f"map_value {placed.definition.name}+{offset:#x} (map {index})"
    insns[slot] = Instruction(LDDW, head.dst, LddwSource.MAP_FD, head.off, index)
    insns[slot + 1] = Instruction(tail.opcode, tail.dst, tail.src, tail.off, 0)
    return f"map {placed.definition.name} (map {index})"


def _check_code_slot(target: Section, dest: int, what: str, site: _Site) -> None:
    if not 0 <= dest < target.size // SLOT_SIZE:
        raise site.fail(f"{what} target slot {dest} is outside {target.name} ({target.size // SLOT_SIZE} instructions)")


def _code_name(target: Section, dest: int, symbol_names: dict[tuple[int, int], str]) -> str:
    label = symbol_names.get((target.index, dest))
    return f"{target.name}+{dest * SLOT_SIZE:#x}" + (f" <{label}>" if label else "")
