"""Reading a program the user names on the command line.

Accepted forms, told apart by content (the extension is only a hint):

* a ``.data`` conformance case (``-- asm`` / ``-- raw`` sections, plus ``-- mem``);
* raw bytecode (binary, a multiple of 8 bytes);
* assembler source text.

ELF objects go to ``ebpfvm.elf`` instead (``is_elf_file`` tells them apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import AssemblyError, InputFileError
from .program import Program

ELF_MAGIC = b"\x7fELF"
MAX_INPUT_BYTES = 64 * 1024 * 1024
_SECTION = re.compile(r"^-- (asm|raw|mem|result|error|c)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class LoadedInput:
    program: Program
    mem: bytes | None = None  # the input memory a .data file provides


def read_file_bytes(path: str) -> bytes:
    """The file's bytes, or ``InputFileError`` naming the path and the reason."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputFileError(path, exc.strerror or str(exc)) from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputFileError(path, f"larger than {MAX_INPUT_BYTES} bytes")
    return data


def is_elf_file(path: str) -> bool:
    """Whether ``path`` starts with the ELF magic (unreadable files are not:
    the caller's loader reports why)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(ELF_MAGIC)) == ELF_MAGIC
    except OSError:
        return False


def _as_text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def load_program_file(path: str) -> LoadedInput:
    data = read_file_bytes(path)
    if data.startswith(ELF_MAGIC):
        raise InputFileError(path, "an ELF object: use `ebpfvm run`, `verify`, `disasm` or `inspect`, which load objects")
    text = _as_text(data)
    if text is None:
        return LoadedInput(Program.from_bytes(data, source=path))
    if path.endswith(".data") or _SECTION.search(text):
        return _load_data_case(path, text)
    from .asm import assemble

    if not text.strip():
        raise InputFileError(path, "empty file")
    return LoadedInput(assemble(text, source=path))


def _load_data_case(path: str, text: str) -> LoadedInput:
    from .asm import assemble
    from .conformance.dataformat import parse_case

    case = parse_case(text, path)
    if case.asm is not None:
        try:
            program = assemble(case.asm, source=path)
        except AssemblyError as exc:
            raise AssemblyError(exc.message, case.file_line_of_asm_line(exc.line), exc.column, path) from None
    else:
        raw = case.raw_bytes()
        if raw is None:
            raise InputFileError(path, "no -- asm or -- raw section")
        program = Program.from_bytes(raw, source=path)
    return LoadedInput(program, case.mem)
