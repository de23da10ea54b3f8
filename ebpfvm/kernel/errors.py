"""Exceptions raised by the kernel bridge.

They subclass the project-wide classes in :mod:`ebpfvm.errors`, carry their
data as attributes and render to one line.  Every class defines ``__reduce__``
so an instance survives the pickle round trip that :mod:`.isolation` uses to
bring a child's exception back to the parent (the default ``Exception``
pickling would call ``cls(*self.args)`` with the formatted message and fail).
"""

from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING, Any

from ebpfvm.errors import EbpfvmError, UserInputError

if TYPE_CHECKING:  # avoid an import cycle: log.py has no dependencies but keep errors leaf-like
    from ebpfvm.kernel.log import VerifierStats


def errno_name(err: int) -> str:
    """``EACCES`` for 13; ``errno 999`` for numbers the platform doesn't name."""
    return _errno.errorcode.get(err, f"errno {err}")


class KernelUnavailable(EbpfvmError):
    """The bpf(2) syscall cannot be used here; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"kernel eBPF unavailable: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,))


class KernelArgumentError(UserInputError, ValueError):
    """An argument the bridge refuses before asking the kernel (wrong key size,
    unknown program type name, instruction bytes not a multiple of 8...)."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        self.message = message
        super().__init__(f"{argument}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.argument, self.message))


class KernelError(EbpfvmError):
    """A bpf(2) command failed; ``errno`` is the kernel's error number and
    ``command`` the command's name (``BPF_MAP_CREATE`` ...)."""

    def __init__(self, errno: int, command: str, detail: str = "") -> None:
        self.errno = errno
        self.command = command
        self.detail = detail
        what = detail or os.strerror(errno)
        super().__init__(f"{command} failed: {errno_name(errno)}: {what}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errno, self.command, self.detail))


class KernelVerifierError(KernelError):
    """BPF_PROG_LOAD refused the program.

    ``log`` is the whole verifier log (empty when loaded with ``log_level=0``),
    ``error_line`` the kernel's own message (``R0 !read_ok``), ``stats`` the
    parsed statistics lines or None.  Raised for every failed load, including
    ones refused before the verifier ran (bad program type: EINVAL, empty log).
    """

    def __init__(
        self,
        errno: int,
        log: str,
        error_line: str,
        stats: VerifierStats | None,
        command: str = "BPF_PROG_LOAD",
    ) -> None:
        self.log = log
        self.error_line = error_line
        self.stats = stats
        super().__init__(errno, command, error_line)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errno, self.log, self.error_line, self.stats, self.command))
