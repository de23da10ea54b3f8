"""``ebpfvm inspect OBJ.o``: what an object file holds, for people.

Programs (name, section, type, attach type, size, linked functions), maps
(type, key/value sizes with their BTF type names, max_entries, flags,
initial contents), sections, relocations as the loader applied them, and a
BTF summary including any CO-RE relocations, which ebpfvm reports but does
not apply.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from ebpfvm.btf import Btf, type_name
from ebpfvm.errors import UserInputError
from ebpfvm.maps.definition import MapDefinition
from ebpfvm.maps.flags import MAP_FLAG_NAMES

from .object import BpfObject, load_object

_MAP_FLAGS = tuple((bit, name) for name, bit in MAP_FLAG_NAMES.items())
_SHF = ((0x1, "W"), (0x2, "A"), (0x4, "X"), (0x10, "M"), (0x20, "S"))
_PREVIEW = 16  # bytes of a global data map's initial value shown


def inspect_command(path: str, out: TextIO) -> int:
    """Print a description of the object at ``path``; 0, or 2 (one line on
    stderr) when the file cannot be loaded."""
    try:
        obj = load_object(path)
    except UserInputError as e:
        print(f"ebpfvm inspect: {e}", file=sys.stderr)
        return 2
    out.write(describe(obj))
    return 0


def describe(obj: BpfObject) -> str:
    parts = [_summary(obj), _programs(obj), _maps(obj), _sections(obj), _relocations(obj), _btf(obj)]
    return "\n".join(p for p in parts if p) + "\n"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: frozenset[int] = frozenset()) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        text = "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        lines.append("  " + text.rstrip())
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(obj: BpfObject) -> str:
    bits = [f'license "{obj.license}"' if obj.license else "no license"]
    if obj.kern_version:
        bits.append(f"kern_version {obj.kern_version:#x}")
    bits += [_plural(len(obj.programs), "program"), _plural(len(obj.maps), "map")]
    bits.append(f"BTF {_plural(len(obj.btf) - 1, 'type')}" if obj.btf else "no BTF")
    text = f"{obj.path}: eBPF object, " + ", ".join(bits) + "\n"
    if obj.core_relocations:
        needing = [d.name for d in obj.details if d.needs_core]
        text += (f"NEEDS CO-RE: {_plural(len(obj.core_relocations), 'relocation')} against the running kernel's "
                 f"BTF (programs: {', '.join(needing) or 'none'}); ebpfvm does not apply them\n")
    return text


def _programs(obj: BpfObject) -> str:
    if not obj.programs:
        return "Programs: none\n"
    rows = []
    for program, details in zip(obj.programs, obj.details):
        subs = ", ".join(f"{name}@{slot}" for name, slot in details.functions[1:]) or "-"
        notes = []
        if details.needs_core:
            notes.append(f"CO-RE x{len(details.core_relocations)}")
        if details.section_def is None:
            notes.append("unknown section type")
        elif details.section_def.attach_btf:
            notes.append("attaches by kernel BTF id")
        rows.append((program.name, program.section, program.prog_type or "?", program.expected_attach_type or "-",
                     len(program), subs, "; ".join(notes)))
    return "Programs:\n" + _table(("name", "section", "type", "attach type", "insns", "subprograms", "notes"),
                                  rows, right=frozenset({4})) + "\n"


def _type_label(btf: Btf | None, type_id: int, size: int) -> str:
    if btf is None or not type_id or type_id >= len(btf):
        return str(size)
    return f"{size} ({type_name(btf, type_id)})"


def _flags(flags: int) -> str:
    if not flags:
        return "0"
    names = [name for bit, name in _MAP_FLAGS if flags & bit]
    rest = flags & ~sum(bit for bit, _ in _MAP_FLAGS)
    if rest:
        names.append(f"{rest:#x}")
    return f"{flags:#x} ({'|'.join(names)})"


def _maps(obj: BpfObject) -> str:
    if not obj.maps:
        return "Maps: none\n"
    rows = []
    notes = []
    for i, m in enumerate(obj.maps):
        rows.append((i, m.name, m.map_type, _type_label(obj.btf, m.btf_key_type_id, m.key_size),
                     _type_label(obj.btf, m.btf_value_type_id, m.value_size), m.max_entries, _flags(m.flags)))
        notes += _map_notes(m)
    text = "Maps:\n" + _table(("#", "name", "type", "key", "value", "max_entries", "flags"), rows,
                              right=frozenset({0, 5}))
    if notes:
        text += "\n" + "\n".join(f"  {n}" for n in notes)
    return text + "\n"


def _map_notes(m: MapDefinition) -> list[str]:
    notes = []
    if m.inner is not None:
        i = m.inner
        notes.append(f"{m.name}: inner maps like {i.map_type} key {i.key_size} value {i.value_size} "
                     f"max_entries {i.max_entries}")
    if m.initial_slots:
        slots = " ".join(f"[{slot}]={name}" for slot, name in m.initial_slots)
        notes.append(f"{m.name}: initial slots {slots}")
    if m.initial_value is not None:
        preview = m.initial_value[:_PREVIEW].hex()
        more = "..." if len(m.initial_value) > _PREVIEW else ""
        access = "read-only (frozen), " if m.read_only else ""
        notes.append(f"{m.name}: {access}initial value {preview}{more}")
    if m.pinning:
        notes.append(f"{m.name}: pinned by name")
    unknown = m.extra.get("unknown_attributes")
    if unknown:
        notes.append(f"{m.name}: ignored attributes {', '.join(unknown)}")
    return notes


def _section_flags(flags: int) -> str:
    return "".join(letter for bit, letter in _SHF if flags & bit) or "-"


def _section_type(name: str) -> str:
    if name.startswith("#") and name[1:].isdigit():  # a type pyelftools has no name for
        return f"{int(name[1:]):#x}"
    return name.removeprefix("SHT_")


def _sections(obj: BpfObject) -> str:
    rows = [(s.index, s.name, _section_type(s.type), _section_flags(s.flags), s.size, s.role)
            for s in obj.sections if s.role != "debug"]
    hidden = sum(1 for s in obj.sections if s.role == "debug")
    text = "Sections:\n" + _table(("idx", "name", "type", "flags", "size", "role"), rows, right=frozenset({0, 4}))
    if hidden:
        text += f"\n  (and {_plural(hidden, 'DWARF debug section')} and their relocations)"
    return text + "\n"


def _relocations(obj: BpfObject) -> str:
    if not obj.relocations:
        return "Relocations: none\n"
    rows = [(r.section, f"{r.offset:#x}", r.offset // 8, r.type, r.symbol, r.target) for r in obj.relocations]
    return "Relocations:\n" + _table(("section", "offset", "insn", "type", "symbol", "target"), rows,
                                     right=frozenset({2})) + "\n"


def _btf(obj: BpfObject) -> str:
    if obj.btf is None:
        return "BTF: none\n"
    counts = obj.btf.count_by_kind()
    kinds = ", ".join(f"{kind.name.lower()} {n}" for kind, n in sorted(counts.items()))
    text = f"BTF: {_plural(len(obj.btf) - 1, 'type')} ({kinds}); {obj.btf.strings_size} bytes of strings\n"
    if obj.kernel_btf is None:
        text += f"  not loadable into the kernel: {obj.kernel_btf_problem}\n"
    ext = obj.btf_ext
    if ext is None:
        return text + "BTF.ext: none\n"
    text += (f"BTF.ext: {_plural(len(ext.func_info), 'func_info record')}, "
             f"{_plural(len(ext.line_info), 'line_info record')}, "
             f"{_plural(len(ext.core_relocations), 'CO-RE relocation')}\n")
    for core in ext.core_relocations:
        text += f"  CO-RE {core.describe()}\n"
    return text
