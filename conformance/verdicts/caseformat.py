"""Reading and writing ``.case`` files (the format is described in the package docstring)."""

from __future__ import annotations

import errno as _errno
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ebpfvm.errors import InputFileError

from .model import (
    CASE_SUFFIX,
    CORPUS_DIR,
    MAP_FLAG_BITS,
    MAP_KEYS,
    MAP_REQUIRED,
    MAX_NAME_LEN,
    PROG_FLAG_BITS,
    RECORDED_SECTIONS,
    REJECT,
    SECTIONS,
    VERDICTS,
    Case,
    CaseFormatError,
    MapSpec,
    Outcome,
    _constants,
)

# --- reading -------------------------------------------------------------------

_HEADER = re.compile(r"^-- ([a-z_]+)[ \t]*$")
_IDENT = re.compile(r"^[A-Za-z0-9_.]+$")


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
