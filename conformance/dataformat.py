"""The ``.data`` conformance case format (the bpf_conformance suite's, plus our corpus).

A file is a header of ``#`` comment lines followed by sections, each opened
by a line ``-- name``::

    # SPDX-License-Identifier: MIT
    -- asm
    mov %r0, 1
    exit
    -- raw
    0x00000001000000b7
    0x0000000000000095
    -- mem
    00 01 02 03
    -- result
    0x1

Sections: ``asm`` (assembler text), ``raw`` (one instruction slot per line,
either as the slot's 8 bytes read as a little-endian integer, ``0x...`` or
decimal, or as 8 hex bytes ``07 00 01 00 01 00 00 00``), ``mem`` (hex bytes
handed to the program in r1, length in r2), ``result`` (expected r0),
``error`` (expected failure text, possibly empty), ``no register offset``
(a flag; any text under it is a note) and ``c`` (the source the case was
compiled from; ignored).

Files come from anywhere, so parsing never raises anything but
``DataFormatError`` and every loop is bounded by the file size cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ebpfvm.errors import InputFileError

# Caps keep a hostile or mistaken file (a binary, a log) from costing more
# than a moment; real cases are a few kilobytes.
MAX_FILE_BYTES = 1 << 20
MAX_RAW_SLOTS = 1 << 16
MAX_MEM_BYTES = 1 << 18

U64_MASK = (1 << 64) - 1

SECTION_ASM = "asm"
SECTION_RAW = "raw"
SECTION_MEM = "mem"
SECTION_RESULT = "result"
SECTION_ERROR = "error"
SECTION_NO_REGISTER_OFFSET = "no register offset"
SECTION_C = "c"
KNOWN_SECTIONS = (SECTION_ASM, SECTION_RAW, SECTION_MEM, SECTION_RESULT, SECTION_ERROR,
                  SECTION_NO_REGISTER_OFFSET, SECTION_C)

FLAG_NO_REGISTER_OFFSET = "no register offset"

# A header comment ``# interpreter-only: why`` marks a case whose behaviour
# the Linux verifier would refuse (an out-of-bounds access, an uninitialised
# read); engines that are not ebpfvm's own runtime skip it.
INTERPRETER_ONLY_MARK = "interpreter-only:"

_SECTION_LINE = re.compile(r"--(?:\s+(.*))?")
# Lengths are capped in the patterns so int() never sees a huge digit string.
_HEX_NUMBER = re.compile(r"[+-]?0[xX][0-9a-fA-F]{1,32}")
_DEC_NUMBER = re.compile(r"[+-]?[0-9]{1,40}")
_HEX_BYTE = re.compile(r"(?:0[xX])?[0-9a-fA-F]{1,2}")


class DataFormatError(InputFileError):
    """A ``.data`` file that does not follow the format; names file and line."""


@dataclass(frozen=True)
class ConformanceCase:
    """One test program with its input and expected outcome.

    ``asm_line`` is the file line of the ``-- asm`` header, so line N of
    ``asm`` (as an assembler numbers it, from 1) is file line ``asm_line + N``.
    Exactly one of ``expected_result`` (unsigned 64-bit) and
    ``expected_error`` (possibly empty text) is set.
    """

    name: str
    path: str
    asm: str | None = None
    asm_line: int = 0
    raw: tuple[int, ...] | None = None
    mem: bytes = b""
    expected_result: int | None = None
    expected_error: str | None = None
    flags: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    header: tuple[str, ...] = ()
    interpreter_only: str | None = None

    @property
    def expects_error(self) -> bool:
        return self.expected_error is not None

    def raw_bytes(self) -> bytes | None:
        """The ``-- raw`` slots as bytecode, or None when the case has no raw section."""
        if self.raw is None:
            return None
        return b"".join(word.to_bytes(8, "little") for word in self.raw)

    def file_line_of_asm_line(self, asm_line: int) -> int:
        return self.asm_line + asm_line


@dataclass
class _Section:
    name: str
    line: int  # file line of the ``-- name`` header
    body: list[tuple[int, str]] = field(default_factory=list)  # (file line, text)


def load_case(path: str | Path) -> ConformanceCase:
    """Read and parse one ``.data`` file."""
    path_text = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DataFormatError(path_text, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise DataFormatError(path_text, f"file is larger than {MAX_FILE_BYTES} bytes; not a test case")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path_text, f"not UTF-8 text (byte {exc.start})") from None
    return parse_case(text, path_text)


def parse_case(text: str, path: str = "<string>", name: str | None = None) -> ConformanceCase:
    """Parse the text of a ``.data`` file; ``path`` is used in messages and
    ``name`` defaults to the file name without its extension."""
    if len(text) > MAX_FILE_BYTES:
        raise DataFormatError(path, f"file is larger than {MAX_FILE_BYTES} characters; not a test case")
    if name is None:
        name = Path(path).stem if path else "<string>"
    header, sections = _split_sections(text, path)
    by_name: dict[str, _Section] = {}
    for section in sections:
        if section.name in by_name:
            first = by_name[section.name].line
            raise DataFormatError(path, f"second '-- {section.name}' section (the first is on line {first})",
                                  section.line)
        by_name[section.name] = section

    asm_section = by_name.get(SECTION_ASM)
    raw_section = by_name.get(SECTION_RAW)
    if asm_section is None and raw_section is None:
        raise DataFormatError(path, "no '-- asm' or '-- raw' section: the case has no program")

    asm = None
    asm_line = 0
    if asm_section is not None:
        asm = "".join(line + "\n" for _, line in asm_section.body)
        asm_line = asm_section.line
    raw = _parse_raw(raw_section, path) if raw_section is not None else None
    mem = _parse_mem(by_name[SECTION_MEM], path) if SECTION_MEM in by_name else b""

    result_section = by_name.get(SECTION_RESULT)
    error_section = by_name.get(SECTION_ERROR)
    if result_section is not None and error_section is not None:
        raise DataFormatError(path, "both '-- result' and '-- error': a case expects one outcome",
                              error_section.line)
    if result_section is None and error_section is None:
        raise DataFormatError(path, "no '-- result' or '-- error' section: the expected outcome is missing")
    expected_result = _parse_result(result_section, path) if result_section is not None else None
    expected_error = None
    if error_section is not None:
        # The suite's files often end without a newline; the text is whatever
        # is left once blank lines and surrounding space are gone.
        expected_error = "\n".join(line.strip() for _, line in error_section.body if line.strip())

    flags: set[str] = set()
    notes: list[str] = []
    flag_section = by_name.get(SECTION_NO_REGISTER_OFFSET)
    if flag_section is not None:
        flags.add(FLAG_NO_REGISTER_OFFSET)
        notes.extend(line.strip() for _, line in flag_section.body if line.strip())

    interpreter_only = None
    for line in header:
        comment = line.lstrip("#").strip()
        if comment.lower().startswith(INTERPRETER_ONLY_MARK):
            interpreter_only = comment[len(INTERPRETER_ONLY_MARK):].strip() or "interpreter-only"

    return ConformanceCase(
        name=name, path=path, asm=asm, asm_line=asm_line, raw=raw, mem=mem,
        expected_result=expected_result, expected_error=expected_error,
        flags=frozenset(flags), notes=tuple(notes), header=tuple(header), interpreter_only=interpreter_only,
    )


def _split_sections(text: str, path: str) -> tuple[list[str], list[_Section]]:
    header: list[str] = []
    sections: list[_Section] = []
    current: _Section | None = None
    # splitlines() would also split on form feeds and other separators that an
    # editor shows inside one line; only newlines end a line here.
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        match = _SECTION_LINE.fullmatch(line.rstrip())
        if match is not None:
            section_name = " ".join((match.group(1) or "").split()).lower()
            if section_name in KNOWN_SECTIONS:
                current = _Section(section_name, number)
                sections.append(current)
                continue
            # C source may hold a line like "-- x"; elsewhere it is a typo.
            if current is None or current.name != SECTION_C:
                known = ", ".join(KNOWN_SECTIONS)
                raise DataFormatError(path, f"unknown section {line.strip()[:60]!r} (known: {known})", number)
        if current is not None:
            current.body.append((number, line))
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            raise DataFormatError(path, f"text before the first section: {stripped[:60]!r} "
                                        "(the header may hold only '#' comments)", number)
        header.append(line)
    return header, sections


def _content_lines(section: _Section) -> list[tuple[int, str]]:
    """Non-blank lines of a data section with ``#`` comments dropped."""
    lines = []
    for number, line in section.body:
        text = line.split("#", 1)[0].strip()
        if text:
            lines.append((number, text))
    return lines


def parse_number(token: str) -> int | None:
    """``0x...`` hex or decimal, optionally signed; None if it is neither."""
    if _HEX_NUMBER.fullmatch(token):
        negative = token.startswith("-")
        value = int(token.lstrip("+-"), 16)
        return -value if negative else value
    if _DEC_NUMBER.fullmatch(token):
        return int(token, 10)
    return None


def _u64(token: str, path: str, line: int, what: str) -> int:
    value = parse_number(token)
    if value is None:
        raise DataFormatError(path, f"bad number {token[:40]!r} in {what}: expected 0x-prefixed hex or decimal", line)
    # Negative values are accepted as their two's complement, as r0 is read.
    if not -(1 << 63) <= value <= U64_MASK:
        raise DataFormatError(path, f"{what} {token[:40]} does not fit in 64 bits", line)
    return value & U64_MASK


def _parse_raw(section: _Section, path: str) -> tuple[int, ...]:
    words: list[int] = []
    for number, text in _content_lines(section):
        if len(words) >= MAX_RAW_SLOTS:
            raise DataFormatError(path, f"more than {MAX_RAW_SLOTS} instruction slots in '-- raw'", number)
        tokens = text.split()
        if len(tokens) == 1:
            words.append(_u64(tokens[0], path, number, "raw instruction"))
        elif len(tokens) == 8 and all(_HEX_BYTE.fullmatch(t) for t in tokens):
            words.append(int.from_bytes(bytes(int(t, 16) for t in tokens), "little"))
        else:
            raise DataFormatError(path, f"bad raw instruction {text[:60]!r}: expected one 64-bit number "
                                        "or 8 hex bytes", number)
    if not words:
        raise DataFormatError(path, "'-- raw' section has no instructions", section.line)
    return tuple(words)


def _parse_mem(section: _Section, path: str) -> bytes:
    out = bytearray()
    for number, text in _content_lines(section):
        tokens = text.split()
        if len(out) + len(tokens) > MAX_MEM_BYTES:
            raise DataFormatError(path, f"'-- mem' holds more than {MAX_MEM_BYTES} bytes", number)
        for token in tokens:
            if not _HEX_BYTE.fullmatch(token):
                raise DataFormatError(path, f"bad byte {token[:40]!r} in '-- mem': expected two hex digits", number)
            out.append(int(token, 16))
    return bytes(out)


def _parse_result(section: _Section, path: str) -> int:
    lines = _content_lines(section)
    if not lines:
        raise DataFormatError(path, "'-- result' section is empty", section.line)
    number, text = lines[0]
    tokens = text.split()
    if len(lines) > 1 or len(tokens) > 1:
        extra = lines[1][0] if len(lines) > 1 else number
        raise DataFormatError(path, "'-- result' must hold exactly one number", extra)
    return _u64(tokens[0], path, number, "result")
