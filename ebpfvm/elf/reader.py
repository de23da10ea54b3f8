"""Bounded, validated access to the structure of an eBPF ELF object.

pyelftools' struct definitions decode the header, section headers, symbols
and relocations, but only from byte ranges this module has already checked
against the file: nothing is read through pyelftools' lazy stream access,
which on hostile input raises assorted exceptions or reads past where it
should.  Whatever pyelftools still raises is turned into ``ElfFormatError``
naming the section.  Only what an eBPF loader needs is exposed: sections
with their bytes, the one symbol table, and the REL relocations of a section.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from elftools.elf.structs import ELFStructs

from .errors import ElfFormatError

EM_BPF = 247
ELF_MAGIC = b"\x7fELF"
_EHDR_SIZE = 64
_SHDR_SIZE = 64
_SYM_SIZE = 24
_REL_SIZE = 16
_SHN_LORESERVE = 0xFF00
_SHN_XINDEX = 0xFFFF

# Section header flags (not decoded by pyelftools' struct).
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: str  # pyelftools' name ("SHT_PROGBITS"), or "SHT_<number>" for unknown types
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    data: bytes  # empty for SHT_NOBITS, whose size is only ``size``

    @property
    def executable(self) -> bool:
        return self.type == "SHT_PROGBITS" and bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True)
class Symbol:
    index: int
    name: str
    value: int
    size: int
    type: str  # "STT_FUNC", "STT_OBJECT", "STT_SECTION", "STT_NOTYPE", ...
    bind: str  # "STB_GLOBAL", "STB_LOCAL", "STB_WEAK"
    visibility: str
    shndx: int  # section index; 0 for undefined, >= 0xff00 for special (ABS, COMMON)

    @property
    def defined(self) -> bool:
        return 0 < self.shndx < _SHN_LORESERVE


@dataclass(frozen=True)
class Relocation:
    offset: int
    type: int
    symbol: int
    entry_offset: int  # where this entry is in its relocation section, for messages


def _name(value: object) -> str:
    return value if isinstance(value, str) else f"#{value}"


def cstring(data: bytes, offset: int) -> str | None:
    """The NUL-terminated string at ``offset`` of ``data``; None if ``offset``
    is outside or the string has no terminator."""
    if not 0 <= offset < len(data):
        return None
    end = data.find(b"\0", offset)
    if end < 0:
        return None
    return data[offset:end].decode("utf-8", errors="replace")


class ElfReader:
    """An object file's sections and symbols, validated once at construction."""

    def __init__(self, data: bytes, path: str) -> None:
        self.path = path
        self.data = bytes(data)
        self._structs = self._check_ident()
        header = self._parse(self._structs.Elf_Ehdr, 0, _EHDR_SIZE, None)
        self._check_header(header)
        self.sections: tuple[Section, ...] = self._read_sections(header)
        self.symbols: tuple[Symbol, ...] = self._read_symbols()
        self._by_name = {s.name: s for s in reversed(self.sections)}  # first one wins

    # -- errors ----------------------------------------------------------
    def error(self, message: str, section: str | None = None, offset: int | None = None) -> ElfFormatError:
        return ElfFormatError(self.path, message, section=section, offset=offset)

    @contextlib.contextmanager
    def _guard(self, section: str | None, offset: int | None) -> Iterator[None]:
        """pyelftools raises ConstructError, ValueError, KeyError... on odd bytes."""
        try:
            yield
        except ElfFormatError:
            raise
        except Exception as e:  # noqa: BLE001 - any decoder failure is a format error here
            raise self.error(f"cannot decode: {type(e).__name__}: {e}".splitlines()[0], section, offset) from None

    def _parse(self, struct_def, offset: int, size: int, section: str | None):  # type: ignore[no-untyped-def]
        if offset < 0 or offset + size > len(self.data):
            raise self.error(f"{size}-byte record at {offset:#x} is past the end of the file "
                             f"({len(self.data)} bytes)", section, offset)
        with self._guard(section, offset):
            return struct_def.parse(self.data[offset:offset + size])

    # -- file header -----------------------------------------------------
    def _check_ident(self) -> ELFStructs:
        if len(self.data) < _EHDR_SIZE:
            raise self.error(f"truncated: {len(self.data)} bytes is shorter than an ELF header")
        if self.data[:4] != ELF_MAGIC:
            raise self.error("not an ELF file (bad magic)", offset=0)
        if self.data[4] != 2:
            raise self.error(f"ELF class {self.data[4]} is not ELFCLASS64 (eBPF objects are 64-bit)", offset=4)
        if self.data[5] != 1:
            what = "big-endian" if self.data[5] == 2 else f"data encoding {self.data[5]}"
            raise self.error(f"{what} ELF: only little-endian eBPF objects are supported", offset=5)
        structs = ELFStructs(little_endian=True, elfclass=64)
        with self._guard(None, 0):
            structs.create_basic_structs()
        return structs

    def _check_header(self, header) -> None:  # type: ignore[no-untyped-def]
        machine = header.e_machine
        if machine not in ("EM_BPF", EM_BPF):
            raise self.error(f"machine {_name(machine)} is not EM_BPF ({EM_BPF})", offset=18)
        if header.e_type not in ("ET_REL", 1):
            raise self.error(f"{_name(header.e_type)} is not a relocatable object (ET_REL)", offset=16)
        if header.e_shentsize != _SHDR_SIZE:
            raise self.error(f"section header size {header.e_shentsize}, expected {_SHDR_SIZE}", offset=58)
        with self._guard(None, 0):
            self._structs.create_advanced_structs(header.e_type, header.e_machine,
                                                  header.e_ident.EI_OSABI)

    # -- sections --------------------------------------------------------
    def _read_sections(self, header) -> tuple[Section, ...]:  # type: ignore[no-untyped-def]
        shoff = header.e_shoff
        if shoff == 0 or shoff >= len(self.data):
            raise self.error(f"section header table offset {shoff:#x} is outside the file", offset=40)
        first = self._parse(self._structs.Elf_Shdr, shoff, _SHDR_SIZE, None)
        count = header.e_shnum or first.sh_size  # 0: the real count is in section 0 (extended numbering)
        if count == 0 or count > (len(self.data) - shoff) // _SHDR_SIZE:
            raise self.error(f"{count} section headers at {shoff:#x} do not fit in the file", offset=60)
        strndx = header.e_shstrndx if header.e_shstrndx != _SHN_XINDEX else first.sh_link
        if not 0 < strndx < count:
            raise self.error(f"section name table index {strndx} is not one of the {count} sections", offset=62)
        headers = [self._parse(self._structs.Elf_Shdr, shoff + i * _SHDR_SIZE, _SHDR_SIZE, f"#{i}")
                   for i in range(count)]
        names_data = self._section_bytes(headers[strndx], f"#{strndx}")
        sections = []
        for index, sh in enumerate(headers):
            name = cstring(names_data, sh.sh_name) if index else ""
            if name is None:
                raise self.error(f"name offset {sh.sh_name} is outside the section name table "
                                 f"or unterminated", f"#{index}")
            sections.append(Section(index, name, _name(sh.sh_type), sh.sh_flags, sh.sh_offset, sh.sh_size,
                                    sh.sh_link, sh.sh_info, sh.sh_entsize,
                                    self._section_bytes(sh, name or f"#{index}") if index else b""))
        return tuple(sections)

    def _section_bytes(self, sh, label: str) -> bytes:  # type: ignore[no-untyped-def]
        if sh.sh_type in ("SHT_NOBITS", "SHT_NULL"):
            return b""
        if sh.sh_offset > len(self.data) or sh.sh_size > len(self.data) - sh.sh_offset:
            raise self.error(f"data [{sh.sh_offset:#x}, +{sh.sh_size:#x}) is past the end of the file "
                             f"({len(self.data)} bytes)", label)
        return self.data[sh.sh_offset:sh.sh_offset + sh.sh_size]

    def section(self, index: int, referrer: str | None = None, offset: int | None = None) -> Section:
        """Section ``index``; ElfFormatError (naming ``referrer``) if there is none."""
        if not 0 <= index < len(self.sections):
            raise self.error(f"section index {index} is not one of the {len(self.sections)} sections",
                             referrer, offset)
        return self.sections[index]

    def by_name(self, name: str) -> Section | None:
        return self._by_name.get(name)

    # -- symbols ---------------------------------------------------------
    def _read_symbols(self) -> tuple[Symbol, ...]:
        tables = [s for s in self.sections if s.type == "SHT_SYMTAB"]
        if not tables:
            raise self.error("no symbol table (stripped object?)")
        if len(tables) > 1:
            raise self.error("more than one symbol table", tables[1].name)
        table = tables[0]
        if table.entsize != _SYM_SIZE or table.size % _SYM_SIZE:
            raise self.error(f"symbol entry size {table.entsize} / table size {table.size} "
                             f"(expected multiples of {_SYM_SIZE})", table.name)
        strtab = self.section(table.link, table.name)
        if strtab.type != "SHT_STRTAB":
            raise self.error(f"linked string table #{table.link} is a {strtab.type}", table.name)
        symbols = []
        for i in range(table.size // _SYM_SIZE):
            at = table.offset + i * _SYM_SIZE
            raw = self._parse(self._structs.Elf_Sym, at, _SYM_SIZE, table.name)
            name = cstring(strtab.data, raw.st_name) if raw.st_name else ""
            if name is None:
                raise self.error(f"symbol {i}: name offset {raw.st_name} outside {strtab.name} or unterminated",
                                 table.name, i * _SYM_SIZE)
            shndx = raw.st_shndx
            if isinstance(shndx, str):  # SHN_UNDEF, SHN_ABS, SHN_COMMON...
                shndx = 0 if shndx == "SHN_UNDEF" else _SHN_LORESERVE
            elif shndx >= len(self.sections) and shndx < _SHN_LORESERVE:
                raise self.error(f"symbol {i} ({name}) is in section {shndx}, which does not exist",
                                 table.name, i * _SYM_SIZE)
            symbols.append(Symbol(i, name, raw.st_value, raw.st_size, _name(raw.st_info.type),
                                  _name(raw.st_info.bind), _name(raw.st_other.visibility), shndx))
        return tuple(symbols)

    def symbol(self, index: int, referrer: str, offset: int) -> Symbol:
        if not 0 <= index < len(self.symbols):
            raise self.error(f"symbol index {index} is not one of the {len(self.symbols)} symbols",
                             referrer, offset)
        return self.symbols[index]

    def symbols_in(self, section_index: int) -> list[Symbol]:
        return [s for s in self.symbols if s.shndx == section_index]

    # -- relocations -----------------------------------------------------
    def relocations_for(self, target: Section) -> tuple[str, list[Relocation]] | None:
        """(name of the relocation section, its entries) for ``target``, or None."""
        for sec in self.sections:
            if sec.type not in ("SHT_REL", "SHT_RELA") or sec.info != target.index:
                continue
            if sec.type == "SHT_RELA":
                raise self.error("RELA relocations are not used by eBPF and not supported", sec.name)
            if sec.entsize != _REL_SIZE or sec.size % _REL_SIZE:
                raise self.error(f"relocation entry size {sec.entsize} / section size {sec.size} "
                                 f"(expected multiples of {_REL_SIZE})", sec.name)
            entries = []
            for i in range(sec.size // _REL_SIZE):
                raw = self._parse(self._structs.Elf_Rel, sec.offset + i * _REL_SIZE, _REL_SIZE, sec.name)
                entries.append(Relocation(raw.r_offset, raw.r_info_type, raw.r_info_sym, i * _REL_SIZE))
            return sec.name, entries
        return None
