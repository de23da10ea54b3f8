"""String helpers: bpf_strncmp, and reading the NUL-terminated constant
strings (ARG_PTR_TO_CONST_STR) that it and bpf_snprintf take.

The verifier accepts a constant string only in a read-only map value, NUL
included; the interpreter is more lenient (any readable memory, so tests can
build strings on the stack) but still insists on the NUL: a string that runs
to the end of its region is a ``NotAConstString`` fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ProgramFault
from .prototype import ArgFlag, ArgKind, Prototype, RetKind
from .registry import HelperRegistry

if TYPE_CHECKING:
    from ..interp.machine import Machine

BPF_STRNCMP = 182


class NotAConstString(ProgramFault):
    """A string argument with no NUL before the end of its memory region."""

    def __init__(self, pc: int, address: int, region: str) -> None:
        self.address = address
        self.region = region
        super().__init__(f"string at {address:#x} is not NUL-terminated within {region}", pc)


def read_const_string(machine: "Machine", address: int) -> bytes:
    """The bytes at ``address`` up to (not including) the first NUL."""
    region = machine.memory.locate(address, 1, False, machine.pc)
    offset = address - region.base
    nul = region.data.find(0, offset)
    if nul < 0:
        raise NotAConstString(machine.pc, address, region.describe())
    return bytes(region.data[offset:nul])


def compare(s1: bytes, s2: bytes, count: int) -> int:
    """The kernel's strncmp (lib/string.c): compare unsigned bytes up to
    ``count`` or a NUL; -1, 0 or 1 (not the difference of the bytes)."""
    for a, b in zip(s1[:count], s2[:count]):  # both end with their NUL
        if a != b:
            return -1 if a < b else 1
        if not a:
            break
    return 0


def strncmp(machine: "Machine", s1: int, s1_sz: int, s2: int, r4: int, r5: int) -> int:
    """bpf_strncmp(s1, s1_sz, s2): strncmp(s1, s2, s1_sz). ``s1`` is plain
    memory of ``s1_sz`` bytes (no NUL needed); ``s2`` a constant string."""
    s1_sz &= 0xFFFF_FFFF
    first = machine.memory.read_bytes(s1, s1_sz, machine.pc)
    second = read_const_string(machine, s2) + b"\0"
    # s1 need not hold a NUL: past its s1_sz bytes strncmp stops anyway.
    return compare(first + b"\0", second, s1_sz)


STRNCMP_PROTO = Prototype(RetKind.INTEGER, (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE, ArgKind.PTR_TO_CONST_STR),
                          arg_flags=(ArgFlag.RDONLY, ArgFlag.NONE, ArgFlag.NONE))


def register(registry: HelperRegistry) -> HelperRegistry:
    registry.register(BPF_STRNCMP, strncmp, proto=STRNCMP_PROTO)
    return registry
