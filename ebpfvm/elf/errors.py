"""Errors of the ELF loader: one base class carrying where the problem is.

Every error names the object file (``path``), the ELF section (``section``,
None for the file header) and the byte offset inside it (``offset``, None
when the problem is not at one place), and renders to one line like
``prog.o: section xdp+0x28: relocation against a non-lddw instruction``.
"""

from __future__ import annotations

from typing import Any

from ebpfvm.errors import UserInputError


class ElfError(UserInputError):
    """The object file cannot be loaded."""

    def __init__(self, path: str, message: str, *, section: str | None = None,
                 offset: int | None = None) -> None:
        self.path = path
        self.message = message
        self.section = section
        self.offset = offset
        where = ""
        if section is not None:
            where = f"section {section}" + (f"+{offset:#x}" if offset is not None else "") + ": "
        elif offset is not None:
            where = f"offset {offset:#x}: "
        super().__init__(f"{path}: {where}{message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.path, self.message, self.section, self.offset))


def _rebuild(cls: type, path: str, message: str, section: str | None, offset: int | None) -> ElfError:
    return cls(path, message, section=section, offset=offset)


class ElfFormatError(ElfError):
    """Not a well-formed 64-bit little-endian eBPF relocatable object."""


class RelocationError(ElfError):
    """A relocation that cannot be applied (bad offset, symbol, instruction or target)."""


class MapDefinitionError(ElfError):
    """A map definition (BTF-defined, legacy or global data) that makes no sense."""


class UnsupportedFeatureError(ElfError):
    """Something well formed that this loader does not do (externs, kfuncs, struct_ops...)."""


class ProgramNotFound(UserInputError, KeyError):
    """``BpfObject.program(name)`` found no program by that symbol or section name."""

    def __init__(self, path: str, name: str, available: tuple[str, ...]) -> None:
        self.path = path
        self.name = name
        self.available = available
        listing = ", ".join(available) or "none"
        super().__init__(f"{path}: no program named {name!r} (programs: {listing})")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.name, self.available))
