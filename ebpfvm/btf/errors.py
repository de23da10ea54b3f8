"""The one error class of the BTF package."""

from __future__ import annotations

from typing import Any

from ebpfvm.errors import UserInputError


class BtfError(UserInputError):
    """Malformed or unusable BTF.

    ``section`` is ".BTF" or ".BTF.ext"; ``offset`` the byte offset inside it
    where the problem was found (None when it concerns no single place);
    ``path`` the object file, filled in by the ELF loader (None when parsing
    bare bytes).  Renders as one line.
    """

    def __init__(self, message: str, *, section: str = ".BTF", offset: int | None = None,
                 path: str | None = None) -> None:
        self.message = message
        self.section = section
        self.offset = offset
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        at = f"+{self.offset:#x}" if self.offset is not None else ""
        return f"{where}section {self.section}{at}: {self.message}"

    def at_path(self, path: str) -> "BtfError":
        """The same error naming ``path`` (the loader knows it, the parser not)."""
        return BtfError(self.message, section=self.section, offset=self.offset, path=path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.message, self.section, self.offset, self.path))


def _rebuild(message: str, section: str, offset: int | None, path: str | None) -> BtfError:
    return BtfError(message, section=section, offset=offset, path=path)
