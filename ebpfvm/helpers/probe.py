"""Reads of memory the program does not own: bpf_probe_read_{kernel,user}[_str]
and the old bpf_probe_read[_str] that guess which of the two is meant.

A program may pass any number as the source address. The kernel reads it
with its *_nofault copy functions, which never crash: a bad address makes the
helper zero its destination and return a negative errno. ``UnsafeMemory``
does the same against the simulated address spaces of ``HelperEnv`` (see
env.py); ``bpf_trace_printk``'s ``%s`` and ``%pI4`` read through it too.

Which errno, as on x86-64:

* a kernel read of an address outside every kernel region that is not a
  canonical kernel address (NULL, user space, non-canonical) is refused
  before any access: -ERANGE (``copy_from_kernel_nofault_allowed``);
* a kernel read that reaches unmapped memory: -EFAULT;
* any failed user read: -EFAULT.

The string variants copy up to ``size - 1`` bytes plus a NUL and return the
length including the NUL (``size`` when the string was cut); bytes of the
destination after the NUL are left as they were, as in the kernel.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Sequence

from ..memory import MASK64, MemoryMap, Region
from .prototype import ArgKind, Prototype, RetKind
from .registry import HelperFn, HelperRegistry

if TYPE_CHECKING:
    from ..interp.machine import Machine

BPF_PROBE_READ = 4
BPF_PROBE_READ_STR = 45
BPF_PROBE_READ_USER = 112
BPF_PROBE_READ_KERNEL = 113
BPF_PROBE_READ_USER_STR = 114
BPF_PROBE_READ_KERNEL_STR = 115

# x86-64 with 4-level page tables.
TASK_SIZE = 0x0000_7FFF_FFFF_F000  # top of user space; bpf_probe_read treats lower addresses as user
KERNEL_SPACE_START = 0xFFFF_8000_0000_0000  # lowest canonical kernel address

def _region_at(spaces: Sequence[MemoryMap], address: int) -> Region | None:
    for space in spaces:
        region = space.find(address, 1)
        if region is not None:
            return region
    return None


def _gather(spaces: Sequence[MemoryMap], address: int, size: int) -> bytes | None:
    """``size`` bytes from ``address``, possibly across adjacent regions, or
    None if any byte is unmapped."""
    if address < 0 or address + size > MASK64 + 1:
        return None
    out = bytearray()
    while len(out) < size:  # each pass takes the rest of one region
        region = _region_at(spaces, address)
        if region is None:
            return None
        offset = address - region.base
        take = min(size - len(out), region.size - offset)
        out += region.data[offset:offset + take]
        address += take
    return bytes(out)


def _gather_string(spaces: Sequence[MemoryMap], address: int, count: int) -> bytes | None:
    """Bytes from ``address`` through the first NUL, at most ``count`` of
    them (then without a NUL), or None if an unmapped byte comes first."""
    out = bytearray()
    while len(out) < count:  # each pass takes the rest of one region
        region = _region_at(spaces, address) if 0 <= address <= MASK64 else None
        if region is None:
            return None
        offset = address - region.base
        chunk = region.data[offset:offset + min(count - len(out), region.size - offset)]
        nul = chunk.find(0)
        if nul >= 0:
            return bytes(out + chunk[:nul + 1])
        out += chunk
        address += len(chunk)
    return bytes(out)


def _terminate(copied: bytes | None, count: int) -> bytes | int:
    """What strncpy_from_*_nofault leaves: the string and its NUL, or the
    first ``count - 1`` bytes and a NUL when no NUL came in time."""
    if copied is None:
        return -errno.EFAULT
    if copied.endswith(b"\0"):
        return copied
    return copied[:count - 1] + b"\0"


class UnsafeMemory:
    """The kernel's fault-tolerant copy functions over one machine's memory
    and its env's simulated kernel and user address spaces."""

    def __init__(self, machine: "Machine") -> None:
        env = machine.env
        self.kernel_spaces: tuple[MemoryMap, ...] = (machine.memory, env.kernel_memory)
        self.user_spaces: tuple[MemoryMap, ...] = (env.user_memory,)

    def _kernel_allowed(self, address: int) -> bool:
        # The program's regions sit at small addresses (ebpfvm.memory) but are
        # kernel memory to the program, so a region hit always counts.
        return address >= KERNEL_SPACE_START or _region_at(self.kernel_spaces, address) is not None

    def is_user_address(self, address: int) -> bool:
        """How bpf_probe_read and ``%s`` pick the address space: user for an
        address in a user region or, failing any region, below TASK_SIZE."""
        if _region_at(self.user_spaces, address) is not None:
            return True
        if _region_at(self.kernel_spaces, address) is not None:
            return False
        return address < TASK_SIZE

    def kernel_bytes(self, address: int, size: int) -> bytes | int:
        """copy_from_kernel_nofault: the bytes, -ERANGE or -EFAULT."""
        if not self._kernel_allowed(address):
            return -errno.ERANGE
        data = _gather(self.kernel_spaces, address, size)
        return data if data is not None else -errno.EFAULT

    def user_bytes(self, address: int, size: int) -> bytes | int:
        """copy_from_user_nofault: the bytes or -EFAULT."""
        data = _gather(self.user_spaces, address, size)
        return data if data is not None else -errno.EFAULT

    def kernel_string(self, address: int, count: int) -> bytes | int:
        """strncpy_from_kernel_nofault: the NUL-terminated copy (at most
        ``count`` bytes), -ERANGE or -EFAULT; b"" when ``count`` <= 0."""
        if count <= 0:
            return b""
        if not self._kernel_allowed(address):
            return -errno.ERANGE
        return _terminate(_gather_string(self.kernel_spaces, address, count), count)

    def user_string(self, address: int, count: int) -> bytes | int:
        """strncpy_from_user_nofault: the NUL-terminated copy or -EFAULT."""
        if count <= 0:
            return b""
        return _terminate(_gather_string(self.user_spaces, address, count), count)

    def any_bytes(self, address: int, size: int) -> bytes | int:
        """bpf_probe_read: a user read below TASK_SIZE, else a kernel read."""
        if self.is_user_address(address):
            return self.user_bytes(address, size)
        return self.kernel_bytes(address, size)

    def any_string(self, address: int, count: int) -> bytes | int:
        if self.is_user_address(address):
            return self.user_string(address, count)
        return self.kernel_string(address, count)


# -- the helpers ------------------------------------------------------------------------

def _probe_helper(name: str, read: str, returns_length: bool) -> HelperFn:
    """A probe_read helper: check the destination (the verifier checks all
    ``size`` bytes of an ARG_PTR_TO_UNINIT_MEM, whatever gets written), read
    with ``UnsafeMemory.<read>``, then copy or zero. Returns 0, or for the
    _str variants the length with the NUL, or the negative errno."""
    def helper(machine: "Machine", dst: int, size: int, src: int, r4: int, r5: int) -> int:
        size &= 0xFFFF_FFFF  # a u32 argument
        if size:
            machine.memory.locate(dst, size, True, machine.pc)
        data = getattr(UnsafeMemory(machine), read)(src, size)
        if isinstance(data, int):
            machine.memory.write_bytes(dst, bytes(size), machine.pc)
            return data
        machine.memory.write_bytes(dst, data, machine.pc)
        return len(data) if returns_length else 0
    helper.__name__ = helper.__qualname__ = name
    return helper


probe_read = _probe_helper("probe_read", "any_bytes", False)
probe_read_str = _probe_helper("probe_read_str", "any_string", True)
probe_read_user = _probe_helper("probe_read_user", "user_bytes", False)
probe_read_kernel = _probe_helper("probe_read_kernel", "kernel_bytes", False)
probe_read_user_str = _probe_helper("probe_read_user_str", "user_string", True)
probe_read_kernel_str = _probe_helper("probe_read_kernel_str", "kernel_string", True)


# Every probe_read variant: (dst: ARG_PTR_TO_UNINIT_MEM, size: ARG_CONST_SIZE_OR_ZERO,
# unsafe_ptr: ARG_ANYTHING), GPL only (kernel/trace/bpf_trace.c).
PROBE_READ_PROTO = Prototype(RetKind.INTEGER, (ArgKind.PTR_TO_UNINIT_MEM, ArgKind.CONST_SIZE_OR_ZERO,
                                               ArgKind.ANYTHING), gpl_only=True)

_HELPERS = (
    (BPF_PROBE_READ, probe_read),
    (BPF_PROBE_READ_STR, probe_read_str),
    (BPF_PROBE_READ_USER, probe_read_user),
    (BPF_PROBE_READ_KERNEL, probe_read_kernel),
    (BPF_PROBE_READ_USER_STR, probe_read_user_str),
    (BPF_PROBE_READ_KERNEL_STR, probe_read_kernel_str),
)


def register(registry: HelperRegistry) -> HelperRegistry:
    for helper_id, fn in _HELPERS:
        registry.register(helper_id, fn, proto=PROBE_READ_PROTO)
    return registry
