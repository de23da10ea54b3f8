"""Bridge to the Linux kernel's own eBPF verifier and interpreter/JIT.

The running kernel is the oracle for ebpfvm: we load the same bytecode with
bpf(2) and compare verdicts, verifier messages and results.  Only ctypes is
used (no libbpf).  Start with :func:`available`; generated programs should go
through :func:`load_and_run_isolated` (see :mod:`.isolation` for why).
"""

from __future__ import annotations

import errno as _errno
import struct

from ebpfvm.availability import Availability
from ebpfvm.kernel.constants import (
    attach_type_name,
    attach_type_number,
    map_type_name,
    map_type_number,
    prog_type_name,
    prog_type_number,
)
from ebpfvm.kernel.errors import (
    KernelArgumentError,
    KernelError,
    KernelUnavailable,
    KernelVerifierError,
)
from ebpfvm.kernel.info import MapInfo, ProgInfo, map_info, prog_info
from ebpfvm.kernel.isolation import (
    Accepted,
    ChildCrashed,
    ChildError,
    Crashed,
    MapSpec,
    Outcome,
    Rejected,
    load_and_run_isolated,
    run_in_child,
)
from ebpfvm.kernel.log import VerifierStats, last_error_line, parse_stats
from ebpfvm.kernel.maps import KernelMap, create_map
from ebpfvm.kernel.prog import (
    LoadedProgram,
    TestRunResult,
    load_program,
    relocate_map_indices,
)

__all__ = [
    "Accepted",
    "Availability",
    "ChildCrashed",
    "ChildError",
    "Crashed",
    "KernelArgumentError",
    "KernelError",
    "KernelMap",
    "KernelUnavailable",
    "KernelVerifierError",
    "LoadedProgram",
    "MapInfo",
    "MapSpec",
    "Outcome",
    "ProgInfo",
    "Rejected",
    "TestRunResult",
    "VerifierStats",
    "attach_type_name",
    "attach_type_number",
    "available",
    "create_map",
    "ensure_available",
    "last_error_line",
    "load_and_run_isolated",
    "load_program",
    "map_info",
    "map_type_name",
    "map_type_number",
    "parse_stats",
    "prog_info",
    "prog_type_name",
    "prog_type_number",
    "relocate_map_indices",
    "run_in_child",
]


# mov r0, 0; exit -- the smallest program every kernel with bpf() accepts.
_PROBE_PROGRAM = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)

_REASONS = {
    _errno.EPERM: "bpf() refused with EPERM: needs CAP_BPF/CAP_SYS_ADMIN "
                  "(or kernel.unprivileged_bpf_disabled=0), or blocked by a security policy",
    _errno.EACCES: "bpf() refused with EACCES (security policy or lockdown)",
    _errno.ENOSYS: "bpf() syscall not implemented (ENOSYS): kernel without "
                   "CONFIG_BPF_SYSCALL, or blocked by seccomp",
    _errno.EINVAL: "kernel refused a trivial socket filter (EINVAL)",
}

_cached: Availability | None = None


def _probe() -> Availability:
    # Imported here so a non-Linux import of the package never touches libc.
    from ebpfvm.kernel import syscall as sc

    try:
        sc.syscall_number()
    except KernelUnavailable as e:
        return Availability(False, e.reason)
    try:
        with load_program(_PROBE_PROGRAM, "socket_filter", log_level=0, stats=False):
            pass
    except KernelVerifierError as e:
        return Availability(False, _REASONS.get(e.errno, f"probe load failed: {e}"))
    except OSError as e:  # libc not loadable and similar
        return Availability(False, f"cannot call bpf(): {e}")
    return Availability(True, "")


def available(refresh: bool = False) -> Availability:
    """Can this process use the kernel's eBPF?  Probed once by loading a
    trivial socket filter and cached; ``refresh=True`` probes again."""
    global _cached
    if _cached is None or refresh:
        _cached = _probe()
    return _cached


def ensure_available() -> None:
    """Raise KernelUnavailable (with the reason) unless :func:`available`."""
    status = available()
    if not status:
        raise KernelUnavailable(status.reason)
