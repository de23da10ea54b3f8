"""Ownership of one kernel file descriptor (a program or a map)."""

from __future__ import annotations

import os
from types import TracebackType

from .errors import KernelArgumentError


class OwnedFd:
    """Closes its fd on ``close()`` (idempotent), on leaving a ``with`` block,
    and, as a safety net only, when garbage collected."""

    _what = "object"

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise KernelArgumentError(self._what, "already closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self):  # type: ignore[no-untyped-def]  # returns the subclass
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown or fd already gone
            pass
