"""The current task and the clocks beyond ktime_get_ns: get_current_pid_tgid,
get_current_uid_gid, get_current_comm, ktime_get_boot_ns,
ktime_get_coarse_ns, jiffies64. Values come from ``machine.env`` (env.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .prototype import ArgKind, Prototype, RetKind
from .registry import HelperRegistry

if TYPE_CHECKING:
    from ..interp.machine import Machine

BPF_GET_CURRENT_PID_TGID = 14
BPF_GET_CURRENT_UID_GID = 15
BPF_GET_CURRENT_COMM = 16
BPF_JIFFIES64 = 118
BPF_KTIME_GET_BOOT_NS = 125
BPF_KTIME_GET_COARSE_NS = 160


def get_current_pid_tgid(machine: "Machine", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """tgid (the process id) in the upper 32 bits, pid (the thread id) below."""
    task = machine.env.task
    return task.tgid << 32 | task.pid


def get_current_uid_gid(machine: "Machine", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """gid in the upper 32 bits, uid below (as seen from the initial user namespace)."""
    task = machine.env.task
    return task.gid << 32 | task.uid


def get_current_comm(machine: "Machine", buf: int, size: int, r3: int, r4: int, r5: int) -> int:
    """strscpy_pad(buf, comm, size): at most size - 1 bytes of the name, a
    NUL, zeros to the end of the buffer. Returns 0, even when the name was cut."""
    size &= 0xFFFF_FFFF
    if size:
        name = machine.env.task.comm[:size - 1]
        machine.memory.write_bytes(buf, name + bytes(size - len(name)), machine.pc)
    return 0


def ktime_get_boot_ns(machine: "Machine", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return machine.env.boot_ns()


def ktime_get_coarse_ns(machine: "Machine", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return machine.env.coarse_ns()


def jiffies64(machine: "Machine", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return machine.env.jiffies64()


_NO_ARGS = Prototype(RetKind.INTEGER, ())
# kernel/bpf/helpers.c: buf is ARG_PTR_TO_UNINIT_MEM, size ARG_CONST_SIZE (> 0); not GPL only.
GET_CURRENT_COMM_PROTO = Prototype(RetKind.INTEGER, (ArgKind.PTR_TO_UNINIT_MEM, ArgKind.CONST_SIZE))

_HELPERS = (
    (BPF_GET_CURRENT_PID_TGID, get_current_pid_tgid, _NO_ARGS),
    (BPF_GET_CURRENT_UID_GID, get_current_uid_gid, _NO_ARGS),
    (BPF_GET_CURRENT_COMM, get_current_comm, GET_CURRENT_COMM_PROTO),
    (BPF_JIFFIES64, jiffies64, _NO_ARGS),
    (BPF_KTIME_GET_BOOT_NS, ktime_get_boot_ns, _NO_ARGS),
    (BPF_KTIME_GET_COARSE_NS, ktime_get_coarse_ns, _NO_ARGS),
)


def register(registry: HelperRegistry) -> HelperRegistry:
    for helper_id, fn, proto in _HELPERS:
        registry.register(helper_id, fn, proto=proto)
    return registry
