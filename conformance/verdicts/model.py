"""The verdict corpus's model: constants of the format, errors, ``MapSpec``, ``Case``, ``Outcome``."""

from __future__ import annotations

import dataclasses
import errno as _errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ebpfvm.errors import InputFileError
from ebpfvm.kernel.constants import PROG_FLAG_NAMES
from ebpfvm.maps.flags import MAP_FLAG_NAMES

CASE_SUFFIX = ".case"
CORPUS_DIR = Path(__file__).resolve().parent.parent / "verifier"

ACCEPT = "accept"
REJECT = "reject"
VERDICTS = (ACCEPT, REJECT)

SECTIONS = ("asm", "raw", "prog_type", "attach_type", "prog_flags", "maps", "verdict", "error", "errno")
# Sections the recorder owns; canonical order puts them last, in this order.
RECORDED_SECTIONS = ("verdict", "error", "errno")

# libbpf-style flag names: one table each, owned by the kernel bridge and the maps.
PROG_FLAG_BITS = PROG_FLAG_NAMES
MAP_FLAG_BITS = MAP_FLAG_NAMES

MAP_KEYS = ("key_size", "value_size", "max_entries", "flags", "name")
MAP_REQUIRED = ("key_size", "value_size", "max_entries")
MAX_NAME_LEN = 15  # BPF_OBJ_NAME_LEN - 1



# --- errors ------------------------------------------------------------------


class CaseFormatError(InputFileError):
    """A ``.case`` file that does not follow the format.  ``path`` and ``line``
    (1-based, None when the problem is the whole file) say where."""

    def __reduce__(self):  # survive pickling like the kernel bridge's errors
        return (type(self), (self.path, self.message, self.line))


class CaseBuildError(InputFileError):
    """A well-formed case whose program cannot be built: the assembler refused
    its ``asm``, or it names a map the case does not declare."""

    def __reduce__(self):
        return (type(self), (self.path, self.message, self.line))


# --- the model ---------------------------------------------------------------


@dataclass(frozen=True)
class MapSpec:
    """One ``maps`` line: what to pass to BPF_MAP_CREATE."""

    map_type: str  # libbpf name ("array") or a decimal number
    key_size: int
    value_size: int
    max_entries: int
    flags: tuple[str, ...] = ()  # names from MAP_FLAG_BITS or decimal numbers
    name: str = ""

    @property
    def map_type_number(self) -> int:
        return _map_type_number(self.map_type)

    @property
    def flags_value(self) -> int:
        return _flag_value(self.flags, MAP_FLAG_BITS)

    def to_line(self) -> str:
        parts = [self.map_type, f"key_size={self.key_size}", f"value_size={self.value_size}",
                 f"max_entries={self.max_entries}"]
        if self.flags:
            parts.append("flags=" + "|".join(self.flags))
        if self.name:
            parts.append(f"name={self.name}")
        return " ".join(parts)


@dataclass(frozen=True)
class Case:
    """A parsed case.  ``asm``/``raw``: exactly one is set (``raw`` is the
    program bytes).  ``verdict`` is None for a case not yet recorded.
    ``path`` and ``asm_line`` (the file line of the first ``asm`` body line)
    only serve error messages and are left out of comparisons."""

    prog_type: str
    asm: str | None = None
    raw: bytes | None = None
    description: str = ""
    attach_type: str | None = None
    prog_flags: tuple[str, ...] = ()
    maps: tuple[MapSpec, ...] = ()
    verdict: str | None = None
    error: str | None = None
    errno: str | None = None
    path: str = dataclasses.field(default="<case>", compare=False)
    asm_line: int = dataclasses.field(default=0, compare=False)

    @property
    def name(self) -> str:
        base = os.path.basename(self.path)
        return base[: -len(CASE_SUFFIX)] if base.endswith(CASE_SUFFIX) else base

    @property
    def prog_type_number(self) -> int:
        return _prog_type_number(self.prog_type)

    @property
    def attach_type_number(self) -> int | None:
        return None if self.attach_type is None else _attach_type_number(self.attach_type)

    @property
    def prog_flags_value(self) -> int:
        return _flag_value(self.prog_flags, PROG_FLAG_BITS)

    @property
    def expected(self) -> "Outcome | None":
        if self.verdict is None:
            return None
        return Outcome(self.verdict, self.error, self.errno)


@dataclass(frozen=True)
class Outcome:
    """A verdict as recorded: ``error`` and ``errno`` only for rejects
    (``error`` may be None when the kernel refused before the verifier ran and
    left an empty log)."""

    verdict: str
    error: str | None = None
    errno: str | None = None

    def describe(self) -> str:
        """One line: ``accept``, ``reject EACCES: R0 !read_ok``."""
        if self.verdict != REJECT:
            return self.verdict
        text = REJECT + (f" {self.errno}" if self.errno else "")
        return text + (f": {self.error}" if self.error else "")


# --- name tables (from the kernel bridge's constants; pure Python) -------------


def _constants():
    from ebpfvm.kernel import constants
    return constants


def _table_number(table: Sequence[str], value: str) -> int:
    if value.isdigit():
        return int(value)
    return table.index(value)


def _prog_type_number(value: str) -> int:
    return _table_number(_constants().PROG_TYPE_NAMES, value)


def _map_type_number(value: str) -> int:
    return _table_number(_constants().MAP_TYPE_NAMES, value)


def _attach_type_number(value: str) -> int:
    return _table_number(_constants().ATTACH_TYPE_NAMES, value)


def _flag_value(names: Iterable[str], table: dict[str, int]) -> int:
    value = 0
    for name in names:
        value |= int(name) if name.isdigit() else table[name]
    return value


def errno_name(number: int) -> str:
    return _errno.errorcode.get(number, str(number))
