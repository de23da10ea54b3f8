"""The verifier verdict corpus: ``conformance/verifier/*.case``.

One file per case.  Each is a small program, the context it is loaded in and
the verdict the live kernel's verifier gave it, in a sectioned text format in
the style of the conformance suite's ``.data`` files::

    # Reading r0 before anything wrote it: every register but r1 and r10
    # starts uninitialised.
    -- asm
    exit
    -- prog_type
    socket_filter
    -- verdict
    reject
    -- error
    R0 !read_ok
    -- errno
    EACCES

Format
======

* Lines before the first section are ``#`` comments (the description) or
  blank.  A section starts with a header line ``-- NAME``; its body runs to the
  next header.  Each section may appear once.  Sections:

  ``asm``
      the program in the assembler dialect of ``ebpfvm.asm`` (``#`` comments,
      labels).  Map references: ``lddw %r1, map_fd N`` loads the map declared
      N-th in ``maps`` (``BPF_PSEUDO_MAP_FD``); ``lddw %r1, map_value N, OFF``
      the address of byte OFF of its value (``BPF_PSEUDO_MAP_VALUE``).
  ``raw``
      instead of ``asm``, for what the assembler cannot express: one 8-byte
      slot per line as a 64-bit number whose low byte is the opcode (the
      ``.data`` files' ``-- raw`` convention), ``#`` comments allowed.  A
      map reference is an lddw with src 1 or 2 whose imm is the map's index.
  ``prog_type``
      libbpf's name for the program type (``socket_filter``, ``xdp``,
      ``sched_cls``, ``kprobe``...), or a number.
  ``attach_type`` (optional)
      the expected attach type, libbpf-style (``cgroup_inet_ingress``) or a number.
  ``prog_flags`` (optional)
      load flags separated by spaces or ``|``: ``strict_alignment``,
      ``any_alignment``, ``test_rnd_hi32``, ``test_state_freq``, ``sleepable``,
      ``xdp_has_frags``, ``xdp_dev_bound_only``, ``test_reg_invariants``, or numbers.
  ``maps`` (optional)
      one map per line, index = position from 0:
      ``array key_size=4 value_size=8 max_entries=1 [flags=no_prealloc|...] [name=NAME]``.
  ``verdict``
      ``accept`` or ``reject``: what the kernel said.  Written by the recorder;
      a case without one has not been recorded yet.
  ``error`` (rejects only)
      the kernel verifier log's error line, verbatim (no comment stripping).
  ``errno`` (rejects only)
      the errno of the failed load (``EACCES``, ``EINVAL``, ``E2BIG``...).

  Blank lines, ``#`` lines and trailing ``# comments`` are ignored in every
  section but ``error``, whose single line is taken as is (kernel messages
  contain ``#``: ``invalid func unknown#999999``).

The recorder rewrites only ``verdict``, ``error`` and ``errno``; every other
byte of the file stays as it was.

Public functions: ``parse_case``/``load_case``/``iter_case_files`` (reading),
``format_case`` (writing a whole case), ``update_verdict`` (in-place rewrite
of the recorded part), ``build_program`` (the bytes to load), and the two
command entry points ``record_command(paths, out)`` and
``check_command(paths, out)``.
"""

from __future__ import annotations

import dataclasses
import errno as _errno
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from ebpfvm.errors import InputFileError
from ebpfvm.kernel.constants import PROG_FLAG_NAMES
from ebpfvm.maps.flags import MAP_FLAG_NAMES

CASE_SUFFIX = ".case"
CORPUS_DIR = Path(__file__).resolve().parent / "verifier"

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

_HEADER = re.compile(r"^-- ([a-z_]+)[ \t]*$")
_IDENT = re.compile(r"^[A-Za-z0-9_.]+$")


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


# --- reading -------------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    """Lines with their terminators, split on ``\\n`` only (what editors and
    ``grep -n`` count), so that ``"".join(result) == text``."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _content(line: str) -> str:
    return line.rstrip("\n").rstrip("\r")


@dataclass
class _Block:
    """A run of lines: the preamble (name None) or a section with its header."""

    name: str | None
    start: int  # 0-based index of the header (or of the first preamble line)
    lines: list[str]  # including the header line for sections

    @property
    def body(self) -> list[tuple[int, str]]:
        """(1-based line number, content) of each body line."""
        first = 0 if self.name is None else 1
        return [(self.start + i + 1, _content(line)) for i, line in enumerate(self.lines) if i >= first]


def _blocks(text: str, path: str) -> list[_Block]:
    blocks = [_Block(None, 0, [])]
    seen: dict[str, int] = {}
    for index, line in enumerate(_split_lines(text)):
        content = _content(line)
        if content.startswith("--"):
            match = _HEADER.match(content)
            if match is None:
                raise CaseFormatError(path, f"malformed section header {content!r} (expected '-- NAME')", index + 1)
            name = match.group(1)
            if name not in SECTIONS:
                raise CaseFormatError(path, f"unknown section {name!r} (known: {', '.join(SECTIONS)})", index + 1)
            if name in seen:
                raise CaseFormatError(path, f"section {name!r} appears twice (first at line {seen[name]})",
                                      index + 1)
            seen[name] = index + 1
            blocks.append(_Block(name, index, [line]))
        else:
            blocks[-1].lines.append(line)
    return blocks


def _values(block: _Block, path: str, *, comments: bool = True) -> list[tuple[int, str]]:
    """Meaningful body lines: stripped, without blank lines (and ``#`` lines)."""
    values = []
    for lineno, content in block.body:
        stripped = content.strip()
        if not stripped or (comments and stripped.startswith("#")):
            continue
        values.append((lineno, stripped))
    return values


def _single(block: _Block, path: str, *, comments: bool = True) -> tuple[int, str] | None:
    """The one value line of a section (a trailing ``# comment`` stripped,
    unless ``comments`` is False as for ``error``), or None if it is empty."""
    values = _values(block, path, comments=comments)
    if comments:
        values = [(lineno, _strip_comment(text)) for lineno, text in values]
    if len(values) > 1:
        raise CaseFormatError(path, f"section {block.name!r} takes one line, found {len(values)}", values[1][0])
    return values[0] if values else None


def _strip_comment(text: str) -> str:
    return text.split("#", 1)[0].strip()


def _parse_number(text: str, what: str, path: str, line: int, bits: int = 32) -> int:
    if not text.isascii():
        raise CaseFormatError(path, f"{what}: {text!r} is not a number", line)
    try:
        value = int(text, 0)
    except ValueError:
        raise CaseFormatError(path, f"{what}: {text!r} is not a number", line) from None
    if not 0 <= value < 1 << bits:
        raise CaseFormatError(path, f"{what}: {value} does not fit in {bits} unsigned bits", line)
    return value


def _parse_name(text: str, table: Sequence[str], what: str, path: str, line: int) -> str:
    """A table name, or a number (kept in decimal)."""
    if text.isascii() and text[:1].isdigit():
        return str(_parse_number(text, what, path, line))
    if text not in table:
        raise CaseFormatError(path, f"unknown {what} {text!r}", line)
    return text


def _parse_flags(text: str, table: dict[str, int], what: str, path: str, line: int) -> tuple[str, ...]:
    flags = []
    for token in re.split(r"[\s|]+", text):
        if not token:
            continue
        if token.isascii() and token[:1].isdigit():
            flags.append(str(_parse_number(token, what, path, line)))
        elif token in table:
            flags.append(token)
        else:
            raise CaseFormatError(path, f"unknown {what} {token!r} (known: {', '.join(table)})", line)
    return tuple(flags)


def _parse_map(text: str, path: str, line: int) -> MapSpec:
    tokens = text.split()
    map_type = _parse_name(tokens[0], _constants().MAP_TYPE_NAMES, "map type", path, line)
    fields: dict[str, str] = {}
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if not eq or not value:
            raise CaseFormatError(path, f"map field {token!r} is not KEY=VALUE", line)
        if key not in MAP_KEYS:
            raise CaseFormatError(path, f"unknown map field {key!r} (known: {', '.join(MAP_KEYS)})", line)
        if key in fields:
            raise CaseFormatError(path, f"map field {key!r} given twice", line)
        fields[key] = value
    missing = [key for key in MAP_REQUIRED if key not in fields]
    if missing:
        raise CaseFormatError(path, f"map needs {', '.join(missing)}", line)
    name = fields.get("name", "")
    if name and (len(name) > MAX_NAME_LEN or not _IDENT.match(name)):
        raise CaseFormatError(path, f"map name {name!r}: at most {MAX_NAME_LEN} of [A-Za-z0-9_.]", line)
    return MapSpec(
        map_type=map_type,
        key_size=_parse_number(fields["key_size"], "key_size", path, line),
        value_size=_parse_number(fields["value_size"], "value_size", path, line),
        max_entries=_parse_number(fields["max_entries"], "max_entries", path, line),
        flags=_parse_flags(fields.get("flags", ""), MAP_FLAG_BITS, "map flag", path, line),
        name=name,
    )


def _parse_raw(block: _Block, path: str) -> bytes:
    slots = []
    for lineno, content in block.body:
        text = _strip_comment(content)
        if not text:
            continue
        value = _parse_number(text, "raw slot", path, lineno, bits=64)
        slots.append(value.to_bytes(8, "little"))
    if not slots:
        raise CaseFormatError(path, "section 'raw' is empty", block.start + 1)
    return b"".join(slots)


def parse_case(text: str, path: str = "<case>") -> Case:
    """Parse the text of a ``.case`` file; ``CaseFormatError`` names the line."""
    blocks = _blocks(text, path)
    description = []
    for lineno, content in blocks[0].body:
        stripped = content.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            raise CaseFormatError(path, "text before the first section must be '#' comments", lineno)
        description.append(stripped[1:].strip())
    sections = {block.name: block for block in blocks[1:]}

    asm = raw = None
    asm_line = 0
    if "asm" in sections and "raw" in sections:
        raise CaseFormatError(path, "give the program as 'asm' or as 'raw', not both", sections["raw"].start + 1)
    if "asm" in sections:
        block = sections["asm"]
        asm = "".join(block.lines[1:])
        asm_line = block.start + 2
        if not any(_strip_comment(content) for _, content in block.body):
            raise CaseFormatError(path, "section 'asm' is empty", block.start + 1)
    elif "raw" in sections:
        raw = _parse_raw(sections["raw"], path)
    else:
        raise CaseFormatError(path, "no program: add an 'asm' (or 'raw') section", None)

    consts = _constants()
    if "prog_type" not in sections:
        raise CaseFormatError(path, "missing section 'prog_type'", None)
    value = _single(sections["prog_type"], path)
    if value is None:
        raise CaseFormatError(path, "section 'prog_type' is empty", sections["prog_type"].start + 1)
    prog_type = _parse_name(value[1], consts.PROG_TYPE_NAMES, "program type", path, value[0])

    attach_type = None
    if "attach_type" in sections:
        value = _single(sections["attach_type"], path)
        if value is None:
            raise CaseFormatError(path, "section 'attach_type' is empty", sections["attach_type"].start + 1)
        attach_type = _parse_name(value[1], consts.ATTACH_TYPE_NAMES, "attach type", path, value[0])

    prog_flags: tuple[str, ...] = ()
    if "prog_flags" in sections:
        for lineno, content in _values(sections["prog_flags"], path):
            prog_flags += _parse_flags(_strip_comment(content), PROG_FLAG_BITS, "program flag", path, lineno)

    maps = []
    if "maps" in sections:
        for lineno, content in _values(sections["maps"], path):
            text_ = _strip_comment(content)
            if text_:
                maps.append(_parse_map(text_, path, lineno))

    verdict = error = errno_ = None
    if "verdict" in sections:
        value = _single(sections["verdict"], path)
        if value is None:
            raise CaseFormatError(path, "section 'verdict' is empty", sections["verdict"].start + 1)
        if value[1] not in VERDICTS:
            raise CaseFormatError(path, f"verdict must be 'accept' or 'reject', not {value[1]!r}", value[0])
        verdict = value[1]
    for name in ("error", "errno"):
        if name in sections and verdict != REJECT:
            raise CaseFormatError(path, f"section {name!r} belongs to a 'reject' verdict",
                                  sections[name].start + 1)
    if "error" in sections:
        value = _single(sections["error"], path, comments=False)
        if value is None:
            raise CaseFormatError(path, "section 'error' is empty", sections["error"].start + 1)
        error = value[1]
    if "errno" in sections:
        value = _single(sections["errno"], path)
        if value is None:
            raise CaseFormatError(path, "section 'errno' is empty", sections["errno"].start + 1)
        text_ = value[1]
        if text_.isascii() and text_.isdigit():
            errno_ = str(int(text_))
        elif text_.startswith("E") and text_ in _errno.errorcode.values():
            errno_ = text_
        else:
            raise CaseFormatError(path, f"unknown errno {text_!r}", value[0])

    return Case(prog_type=prog_type, asm=asm, raw=raw, description="\n".join(description),
                attach_type=attach_type, prog_flags=prog_flags, maps=tuple(maps), verdict=verdict,
                error=error, errno=errno_, path=path, asm_line=asm_line)


def _read_text(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CaseFormatError(path, exc.strerror or str(exc), None) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CaseFormatError(path, f"not UTF-8 (byte {exc.start})", line) from None


def load_case(path: str | os.PathLike) -> Case:
    path = os.fspath(path)
    return parse_case(_read_text(path), path)


def iter_case_files(paths: Iterable[str | os.PathLike] = ()) -> list[str]:
    """``.case`` files named by ``paths`` (files, or directories searched
    non-recursively), sorted within each directory; the corpus when empty."""
    paths = list(paths) or [CORPUS_DIR]
    found: list[str] = []
    for entry in paths:
        entry = os.fspath(entry)
        if os.path.isdir(entry):
            found.extend(sorted(os.path.join(entry, name) for name in os.listdir(entry)
                                if name.endswith(CASE_SUFFIX)))
        elif os.path.exists(entry):
            found.append(entry)
        else:
            raise InputFileError(entry, "no such file or directory")
    return found


def load_corpus(paths: Iterable[str | os.PathLike] = ()) -> list[Case]:
    return [load_case(path) for path in iter_case_files(paths)]


# --- writing -------------------------------------------------------------------


def format_case(case: Case) -> str:
    """The canonical text of ``case`` (``parse_case`` gives it back)."""
    out = []
    for line in case.description.split("\n") if case.description else ():
        out.append(f"# {line}".rstrip() + "\n")
    if case.asm is not None:
        out.append("-- asm\n")
        out.append(case.asm if case.asm.endswith("\n") or not case.asm else case.asm + "\n")
    elif case.raw is not None:
        out.append("-- raw\n")
        for i in range(0, len(case.raw), 8):
            slot = int.from_bytes(case.raw[i:i + 8].ljust(8, bytes(1)), "little")
            out.append(f"0x{slot:016x}\n")
    out.append(f"-- prog_type\n{case.prog_type}\n")
    if case.attach_type is not None:
        out.append(f"-- attach_type\n{case.attach_type}\n")
    if case.prog_flags:
        out.append(f"-- prog_flags\n{' | '.join(case.prog_flags)}\n")
    if case.maps:
        out.append("-- maps\n")
        out.extend(spec.to_line() + "\n" for spec in case.maps)
    out.append(_recorded_text(case.expected))
    return "".join(out)


def _recorded_text(outcome: Outcome | None) -> str:
    if outcome is None:
        return ""
    text = f"-- verdict\n{outcome.verdict}\n"
    if outcome.verdict == REJECT:
        if outcome.error:
            text += f"-- error\n{outcome.error}\n"
        if outcome.errno:
            text += f"-- errno\n{outcome.errno}\n"
    return text


def update_verdict(text: str, outcome: Outcome, path: str = "<case>") -> str:
    """``text`` with its ``verdict``/``error``/``errno`` sections set to
    ``outcome``; every other line is kept byte for byte.  A section's value
    line is replaced in place (comments around it stay); sections that the
    outcome no longer needs are removed; missing ones go after ``verdict``
    (or at the end of the file)."""
    if "\n" in (outcome.error or "") or "\r" in (outcome.error or ""):
        raise ValueError("an error line cannot contain a line break")
    blocks = _blocks(text, path)
    wanted = {"verdict": outcome.verdict}
    if outcome.verdict == REJECT:
        if outcome.error:
            wanted["error"] = outcome.error
        if outcome.errno:
            wanted["errno"] = outcome.errno

    kept: list[_Block] = []
    for block in blocks:
        if block.name in RECORDED_SECTIONS and block.name not in wanted:
            continue  # drop: e.g. an old error of a case that now passes
        if block.name in wanted:
            block = _Block(block.name, block.start, _set_value(block, wanted.pop(block.name)))
        kept.append(block)

    missing = [name for name in RECORDED_SECTIONS if name in wanted]
    if missing:
        new = [_Block(name, -1, [f"-- {name}\n", wanted[name] + "\n"]) for name in missing]
        anchor = next((i for i, b in enumerate(kept) if b.name == "verdict"), None)
        if anchor is None or missing[0] == "verdict":
            position = len(kept)
        else:
            # After verdict, and after an existing error when adding errno.
            position = anchor + 1
            while position < len(kept) and kept[position].name in RECORDED_SECTIONS and \
                    RECORDED_SECTIONS.index(kept[position].name) < RECORDED_SECTIONS.index(missing[0]):
                position += 1
        kept[position:position] = new

    lines = [line for block in kept for line in block.lines]
    # A block that used to end the file may lack its final newline.
    for i in range(len(lines) - 1):
        if not lines[i].endswith("\n"):
            lines[i] += "\n"
    return "".join(lines)


def _set_value(block: _Block, value: str) -> list[str]:
    lines = list(block.lines)
    comments = block.name != "error"
    for i in range(1, len(lines)):
        content = _content(lines[i])
        stripped = content.strip()
        if stripped and not (comments and stripped.startswith("#")):
            # Keep a trailing comment ("reject   # see issue 12") and the line ending.
            hash_at = content.find("#") if comments else -1
            comment = content[len(content[:hash_at].rstrip()):] if hash_at > 0 else ""
            lines[i] = value + comment + (lines[i][len(content):] or "\n")
            return lines
    if not lines[0].endswith("\n"):
        lines[0] += "\n"
    lines.insert(1, value + "\n")
    return lines


def write_atomically(path: str, text: str) -> None:
    """Replace ``path``'s content with ``text`` via a temp file and rename, so
    the file is never half written; its permission bits are kept."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- building the program ------------------------------------------------------

def build_program(case: Case) -> bytes:
    """The instruction bytes of ``case`` as the kernel gets them, except that
    map references carry the map's index (the loader puts in the fd).
    ``CaseBuildError`` (with the file line) if the program cannot be built."""
    if case.raw is not None:
        insns = case.raw
    else:
        from ebpfvm.asm import assemble
        from ebpfvm.errors import AssemblyError

        try:
            program = assemble(case.asm or "", source=case.path)
        except AssemblyError as exc:
            raise CaseBuildError(case.path, exc.message, case.asm_line + exc.line - 1) from None
        insns = program.to_bytes()
        if not insns:
            raise CaseBuildError(case.path, "the program has no instructions", case.asm_line - 1)
    _check_map_indices(insns, case)
    return insns


def _check_map_indices(insns: bytes, case: Case) -> None:
    pc = 0
    while pc < len(insns) // 8:
        opcode, regs = insns[8 * pc], insns[8 * pc + 1]
        if opcode == 0x18:
            if regs >> 4 in (1, 2):
                index = int.from_bytes(insns[8 * pc + 4: 8 * pc + 8], "little", signed=True)
                if not 0 <= index < len(case.maps):
                    raise CaseBuildError(case.path, f"insn {pc}: map index {index} but the case declares "
                                                    f"{len(case.maps)} map(s)", None)
            pc += 2
        else:
            pc += 1


# --- asking the kernel -----------------------------------------------------------


class CaseRunError(InputFileError):
    """The kernel could not give a verdict for a case: the loading child
    crashed or hung, or the kernel refused to create a declared map."""

    def __reduce__(self):
        return (type(self), (self.path, self.message, self.line))


def _load_in_child(insns: bytes, prog_type: int, attach_type: int, prog_flags: int,
                   maps: tuple[tuple[int, int, int, int, int, str], ...]) -> Outcome:
    """Runs in the forked child: create the maps, put their fds into the
    program, load it with log level 1 and turn the answer into an Outcome.
    Nothing is closed explicitly: the child exits right after."""
    from ebpfvm import kernel

    created = [kernel.create_map(*spec) for spec in maps]  # keep them: dropping one closes its fd
    fds = [m.fd for m in created]
    if fds:
        insns = kernel.relocate_map_indices(insns, fds)
    try:
        kernel.load_program(insns, prog_type, log_level=1, expected_attach_type=attach_type,
                            prog_flags=prog_flags)
    except kernel.KernelVerifierError as exc:
        return Outcome(REJECT, kernel.last_error_line(exc.log) or None, errno_name(exc.errno))
    return Outcome(ACCEPT)


def kernel_outcome(case: Case, *, timeout: float = 60.0) -> Outcome:
    """Load ``case`` in the live kernel (maps created, log level 1, in a
    forked child so that a verifier Oops kills only the child) and return
    its verdict.  Raises CaseBuildError, CaseRunError, or KernelUnavailable."""
    from ebpfvm import kernel

    insns = build_program(case)
    kernel.ensure_available()
    maps = tuple((spec.map_type_number, spec.key_size, spec.value_size, spec.max_entries, spec.flags_value,
                  spec.name) for spec in case.maps)
    try:
        return kernel.run_in_child(_load_in_child, insns, case.prog_type_number, case.attach_type_number or 0,
                                   case.prog_flags_value, maps, timeout=timeout)
    except kernel.ChildCrashed as exc:
        raise CaseRunError(case.path, f"the loading child did not report: {exc}", None) from None
    except (kernel.KernelError, kernel.KernelArgumentError, kernel.ChildError) as exc:
        # map creation refused, or something else failed before the load
        raise CaseRunError(case.path, f"kernel setup failed: {exc}", None) from None


# --- commands --------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One case checked against the kernel: ``actual`` is None when it could
    not be run (``problem`` says why)."""

    path: str
    expected: Outcome | None
    actual: Outcome | None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.actual is not None and self.expected == self.actual


def check_case_file(path: str) -> CheckResult:
    try:
        case = load_case(path)
        actual = kernel_outcome(case)
    except (CaseFormatError, CaseBuildError, CaseRunError) as exc:
        return CheckResult(path, None, None, str(exc))
    return CheckResult(path, case.expected, actual)


def mismatch_table(results: Sequence[CheckResult]) -> str:
    """The results that are not ok, as an aligned text table."""
    rows = [("case", "recorded", "kernel")]
    for r in results:
        if r.ok:
            continue
        name = os.path.basename(r.path)
        if r.actual is None:
            rows.append((name, r.expected.describe() if r.expected else "-", f"ERROR {r.problem}"))
        else:
            rows.append((name, r.expected.describe() if r.expected else "(not recorded)", r.actual.describe()))
    if len(rows) == 1:
        return ""
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]}".rstrip() for row in rows)


def _kernel_status() -> str:
    """"" when the kernel can be used, else why not."""
    try:
        from ebpfvm import kernel
    except Exception as exc:  # noqa: BLE001 - the bridge itself is unusable
        return f"cannot import the kernel bridge: {exc}"
    status = kernel.available()
    return "" if status else status.reason


def _files_for_kernel_run(paths: Sequence[str], out: TextIO) -> list[str] | None:
    """The case files to load, or None (after saying why) when there are none
    or the kernel cannot be used."""
    files = iter_case_files(paths)
    if not files:
        print("no .case files found", file=out)
        return None
    reason = _kernel_status()
    if reason:
        print(f"kernel eBPF unavailable: {reason}", file=out)
        return None
    return files


def check_command(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """``ebpfvm conformance check PATH...``: load every case in the kernel and
    report those whose recorded verdict or error line no longer match.
    Exit status: 0 all match, 1 some differ or could not be run, 2 no cases
    or no kernel."""
    files = _files_for_kernel_run(paths, out)
    if files is None:
        return 2
    results = [check_case_file(path) for path in files]
    bad = [r for r in results if not r.ok]
    if bad:
        print(mismatch_table(results), file=out)
    print(f"{len(results)} cases: {len(results) - len(bad)} match the kernel, {len(bad)} do not", file=out)
    return 1 if bad else 0


def record_case_file(path: str) -> tuple[Outcome | None, Outcome]:
    """Load the case at ``path`` in the kernel and rewrite its recorded
    sections to what the kernel said; returns (before, after)."""
    text = _read_text(path)
    case = parse_case(text, path)
    outcome = kernel_outcome(case)
    new_text = update_verdict(text, outcome, path)
    if new_text != text:
        # Never write something we would not read back identically.
        written = parse_case(new_text, path)
        if written.expected != outcome or dataclasses.replace(written, verdict=None, error=None, errno=None) != \
                dataclasses.replace(case, verdict=None, error=None, errno=None):
            raise CaseFormatError(path, "internal error: rewriting the verdict would change the case", None)
        write_atomically(path, new_text)
    return case.expected, outcome


def record_command(paths: Sequence[str], out: TextIO = sys.stdout) -> int:
    """``ebpfvm conformance record PATH...``: load every case in the kernel
    and write the kernel's verdict, error line and errno into the file.
    Prints one line per case that changed or failed, then a summary.
    Exit status: 0 all recorded, 1 some could not be, 2 no cases or no kernel."""
    files = _files_for_kernel_run(paths, out)
    if files is None:
        return 2
    failures = changed = 0
    for path in files:
        try:
            before, after = record_case_file(path)
        except (CaseFormatError, CaseBuildError, CaseRunError) as exc:
            failures += 1
            print(f"FAILED {exc}", file=out)
            continue
        if before != after:
            changed += 1
            was = before.describe() if before else "not recorded"
            print(f"NEW    {path}: {after.describe()} (was: {was})", file=out)
    print(f"{len(files)} cases: {changed} changed, {len(files) - changed - failures} unchanged, "
          f"{failures} failed", file=out)
    return 1 if failures else 0
