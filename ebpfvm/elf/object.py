"""``load_object``: an eBPF ELF object file -> ``BpfObject`` (programs, maps,
license, BTF), the way libbpf reads one.

Steps: validate the ELF structure (:mod:`.reader`), parse .BTF/.BTF.ext,
collect map definitions (:mod:`.maps`), decode every code section and apply
its relocations (:mod:`.relocations`), then link each entry function with
the subprograms it reaches into one ``Program`` (:mod:`.linking`).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Union

from ebpfvm.btf import Btf, BtfError, BtfExt, CoreRelocation, parse_btf, parse_btf_ext
from ebpfvm.btf.functions import describe_functions
from ebpfvm.btf.fixup import fixup_datasecs
from ebpfvm.maps.definition import MapDefinition
from ebpfvm.program import Program

from .errors import ElfFormatError, ProgramNotFound
from .linking import ExtIndex, Function, LinkedProgram, find_functions, link
from .maps import LEGACY_SECTION, MAPS_SECTION, collect_maps, is_data_section
from .reader import ElfReader, Section
from .relocations import AppliedRelocation, MapLocator, SectionCode, relocate_section
from .sections import SectionDef, classify

MAX_FILE_SIZE = 256 << 20
BTF_SECTION = ".BTF"
BTF_EXT_SECTION = ".BTF.ext"


@dataclass(frozen=True)
class SectionSummary:
    index: int
    name: str
    type: str
    flags: int
    size: int
    role: str  # "program", "subprograms", "maps", "data", "license", "btf", "relocations", "symbols", "other"


@dataclass(frozen=True)
class ProgramDetails:
    """What the object says about one program beyond its ``Program``."""

    name: str
    section: str
    section_def: SectionDef | None
    # Functions linked into the program: (name, first slot), the entry first.
    functions: tuple[tuple[str, int], ...]
    # CO-RE relocations at slots of this program: not applied by ebpfvm.
    core_relocations: tuple[tuple[int, CoreRelocation], ...]
    # BTF records for BPF_PROG_LOAD (see LinkedProgram); empty without .BTF.ext.
    func_info: tuple[tuple[int, int], ...] = ()
    btf_line_info: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def attach_target(self) -> str:
        """What follows the section type: ``do_unlinkat`` for ``kprobe/do_unlinkat``."""
        _, _, rest = self.section.partition("/")
        return rest

    @property
    def needs_core(self) -> bool:
        return bool(self.core_relocations)


@dataclass(frozen=True)
class BpfObject:
    path: str
    programs: tuple[Program, ...]
    maps: tuple[MapDefinition, ...]
    license: str
    kern_version: int
    btf: Btf | None
    btf_ext: BtfExt | None = None
    details: tuple[ProgramDetails, ...] = ()
    functions: tuple[Function, ...] = ()
    sections: tuple[SectionSummary, ...] = ()
    relocations: tuple[AppliedRelocation, ...] = ()
    core_relocations: tuple[CoreRelocation, ...] = ()
    # .BTF with DATASEC sizes and offsets filled in, ready for BPF_BTF_LOAD;
    # None without BTF or when it could not be fixed up (``kernel_btf_problem`` says why).
    kernel_btf: bytes | None = field(default=None, repr=False)
    kernel_btf_problem: str = ""

    def program(self, name: str) -> Program:
        """The program whose symbol (or, failing that, section) is ``name``."""
        return self.programs[self._index(name)]

    def program_details(self, name: str) -> ProgramDetails:
        return self.details[self._index(name)]

    def _index(self, name: str) -> int:
        for i, p in enumerate(self.programs):
            if p.name == name:
                return i
        for i, p in enumerate(self.programs):
            if p.section == name:
                return i
        raise ProgramNotFound(self.path, name, tuple(p.name for p in self.programs))

    def map(self, name: str) -> MapDefinition:
        return self.maps[self.map_index(name)]

    def map_index(self, name: str) -> int:
        for i, m in enumerate(self.maps):
            if m.name == name:
                return i
        raise KeyError(f"{self.path}: no map named {name!r}")

    @property
    def needs_core(self) -> bool:
        return bool(self.core_relocations)


Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


def load_object(source: Source, *, path: str | None = None) -> BpfObject:
    """Load an eBPF object from a file path or from its bytes (then ``path``
    names it in messages).  Raises subclasses of ``UserInputError`` naming the
    file, section and offset for anything malformed or unsupported."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), path or "<memory>"
    else:
        label = path or os.fspath(source)
        data = _read(label, os.fspath(source))
    reader = ElfReader(data, label)
    btf, btf_ext = _load_btf(reader)
    placed = collect_maps(reader, btf)
    maps = tuple(p.definition for p in placed)
    license_text = _license(reader)
    kern_version = _kern_version(reader)

    code_sections = [s for s in reader.sections if s.executable and s.size > 0]
    functions = find_functions(reader, code_sections)
    starts = {(f.section, f.start): f.name for f in functions}
    locator = MapLocator(placed)
    code: dict[int, SectionCode] = {}
    applied: list[AppliedRelocation] = []
    for section in code_sections:
        code[section.index], section_relocs = relocate_section(reader, section, locator, starts)
        applied += section_relocs
    by_start = {f.key: f for f in functions}
    ext = ExtIndex(btf_ext)
    programs, details = [], []
    for fn in functions:
        if not fn.entry:
            continue
        linked = link(label, fn, code, by_start, ext)
        section_def = classify(fn.section_name)
        programs.append(_program(linked, label, section_def, license_text, maps, btf))
        details.append(ProgramDetails(fn.name, fn.section_name.lstrip("?"), section_def,
                                      tuple((p.function.name, p.base) for p in linked.placements),
                                      linked.core_relocations, linked.func_info, linked.btf_line_info))
    kernel_btf, problem = _kernel_btf(reader, btf)
    return BpfObject(
        path=label, programs=tuple(programs), maps=maps, license=license_text, kern_version=kern_version,
        btf=btf, btf_ext=btf_ext, details=tuple(details), functions=tuple(functions),
        sections=tuple(_summaries(reader)), relocations=tuple(applied),
        core_relocations=btf_ext.core_relocations if btf_ext else (),
        kernel_btf=kernel_btf, kernel_btf_problem=problem)


def _read(label: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except OSError as e:
        raise ElfFormatError(label, f"cannot read: {e.strerror or e}") from None
    if len(data) > MAX_FILE_SIZE:
        raise ElfFormatError(label, f"larger than {MAX_FILE_SIZE >> 20} MiB: not an eBPF object")
    return data


def _load_btf(reader: ElfReader) -> tuple[Btf | None, BtfExt | None]:
    btf_section = reader.by_name(BTF_SECTION)
    ext_section = reader.by_name(BTF_EXT_SECTION)
    btf = ext = None
    try:
        if btf_section is not None:
            _expect_progbits(reader, btf_section)
            btf = parse_btf(btf_section.data)
        if ext_section is not None and btf is not None:
            _expect_progbits(reader, ext_section)
            ext = parse_btf_ext(ext_section.data, btf)
    except BtfError as e:
        raise e.at_path(reader.path) from None
    return btf, ext


def _kernel_btf(reader: ElfReader, btf: Btf | None) -> tuple[bytes | None, str]:
    """The .BTF fixed up for the kernel; BTF is optional there, so a failure
    is only reported, as libbpf does."""
    section = reader.by_name(BTF_SECTION)
    if btf is None or section is None:
        return None, "no .BTF section"
    sizes = {s.name: s.size for s in reader.sections}
    offsets = {}
    for sym in reader.symbols:
        if sym.defined and sym.type in ("STT_OBJECT", "STT_FUNC", "STT_NOTYPE") and sym.name:
            offsets.setdefault((reader.sections[sym.shndx].name, sym.name), sym.value)
    try:
        return fixup_datasecs(section.data, btf, sizes, offsets), ""
    except BtfError as e:
        return None, e.message


def _expect_progbits(reader: ElfReader, section: Section) -> None:
    if section.type != "SHT_PROGBITS":
        raise ElfFormatError(reader.path, f"is {section.type}, expected SHT_PROGBITS", section=section.name)


def _license(reader: ElfReader) -> str:
    section = reader.by_name("license")
    if section is None:
        return ""
    return section.data.split(b"\0", 1)[0].decode("ascii", errors="replace")


def _kern_version(reader: ElfReader) -> int:
    section = reader.by_name("version")
    if section is None:
        return 0
    if len(section.data) != 4:
        raise ElfFormatError(reader.path, f"{len(section.data)} bytes, expected a 4-byte kernel version",
                             section=section.name)
    return struct.unpack("<I", section.data)[0]


def _program(linked: LinkedProgram, path: str, section_def: SectionDef | None, license_text: str,
             maps: tuple[MapDefinition, ...], btf: Btf | None) -> Program:
    fn = linked.entry
    functions = describe_functions(btf, linked.func_info) if btf is not None else ()
    return Program(linked.instructions, labels=linked.labels, source=path, name=fn.name,
                   section=fn.section_name.lstrip("?"),
                   prog_type=section_def.prog_type if section_def else None,
                   expected_attach_type=section_def.expected_attach_type if section_def else None,
                   license=license_text, maps=maps, line_info=linked.line_info, functions=functions)


def _summaries(reader: ElfReader) -> list[SectionSummary]:
    out = []
    for s in reader.sections[1:]:
        if s.executable:
            role = "subprograms" if s.name == ".text" else "program"
        elif s.name in (MAPS_SECTION, LEGACY_SECTION):
            role = "maps"
        elif is_data_section(s):
            role = "data"
        elif s.name in ("license", "version"):
            role = s.name
        elif s.name in (BTF_SECTION, BTF_EXT_SECTION):
            role = "btf"
        elif s.type in ("SHT_REL", "SHT_RELA"):
            target = reader.sections[s.info].name if 0 < s.info < len(reader.sections) else ""
            role = "debug" if target.startswith(".debug") else "relocations"
        elif s.type in ("SHT_SYMTAB", "SHT_STRTAB"):
            role = "symbols"
        elif s.name.startswith(".debug"):
            role = "debug"
        else:
            role = "other"
        out.append(SectionSummary(s.index, s.name, s.type, s.flags, s.size, role))
    return out
