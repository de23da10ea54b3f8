"""bpf_probe_read_{kernel,user}[_str] and the old bpf_probe_read[_str]:
reads of simulated kernel and user memory and of the program's own regions,
with the kernel's errnos and zeroing on failure."""

from __future__ import annotations

import errno

import pytest

from ebpfvm import assemble, run
from ebpfvm.errors import MemoryFault
from ebpfvm.helpers import ArgKind, HelperEnv, default_registry
from ebpfvm.helpers.env import KERNEL_SPACE_HINT as K
from ebpfvm.helpers.env import USER_SPACE_HINT as U
from ebpfvm.helpers.probe import UnsafeMemory

EFAULT, ERANGE = -errno.EFAULT, -errno.ERANGE
MASK64 = (1 << 64) - 1
NON_CANONICAL = 0x8000_0000_0000_0000
UNMAPPED_KERNEL = 0xFFFF_C900_0000_0000


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _env() -> HelperEnv:
    env = HelperEnv()
    env.kernel_memory.add_region("task", K, b"0123456789abcdef")
    env.kernel_memory.add_region("task tail", K + 16, b"ghij")  # adjacent: one readable run of 20 bytes
    env.kernel_memory.add_region("name", K + 0x1000, b"kthread\0")
    env.user_memory.add_region("argv", U, b"user string\0after")
    return env


def probe(helper: str, size: int, src: int | str, env: HelperEnv | None = None,
          mem_size: int = 24) -> tuple[int, bytes]:
    """Call ``helper(mem, size, src)`` with mem prefilled with 0xff; ``src``
    is a number or ``"stack"`` (the address of "stack data\\0" on the stack).
    Returns (r0 signed, mem)."""
    lines = [f"lddw %r6, {int.from_bytes(b'stack da', 'little'):#x}", "stxdw [%r10-16], %r6",
             f"lddw %r6, {int.from_bytes(b'ta', 'little'):#x}", "stxdw [%r10-8], %r6"]
    if src == "stack":
        lines += ["mov %r3, %r10", "add %r3, -16"]
    else:
        lines += [f"lddw %r3, {int(src) & MASK64:#x}"]
    lines += [f"mov %r2, {size}", f"call {helper}", "exit"]
    result = run(assemble("\n".join(lines)), b"\xff" * mem_size, env=env if env is not None else _env())
    return _signed(result.r0), result.mem


# -- plain reads -----------------------------------------------------------------------------------

def test_kernel_read_of_kernel_memory() -> None:
    assert probe("bpf_probe_read_kernel", 4, K + 2) == (0, b"2345" + b"\xff" * 20)


def test_kernel_read_across_adjacent_regions() -> None:
    assert probe("bpf_probe_read_kernel", 20, K) == (0, b"0123456789abcdefghij" + b"\xff" * 4)


def test_kernel_read_of_the_programs_own_stack() -> None:
    assert probe("bpf_probe_read_kernel", 11, "stack") == (0, b"stack data\0" + b"\xff" * 13)


@pytest.mark.parametrize("src, errno_", [
    (0, ERANGE),                 # NULL: not a kernel address, refused before any access
    (U, ERANGE),                 # a user address
    (NON_CANONICAL, ERANGE),
    (UNMAPPED_KERNEL, EFAULT),   # a kernel address nothing is mapped at
    (K + 18, EFAULT),            # starts mapped, runs off the end
])
def test_failed_kernel_reads_zero_the_destination(src: int, errno_: int) -> None:
    assert probe("bpf_probe_read_kernel", 8, src) == (errno_, bytes(8) + b"\xff" * 16)


def test_user_read() -> None:
    assert probe("bpf_probe_read_user", 4, U + 5) == (0, b"stri" + b"\xff" * 20)


@pytest.mark.parametrize("src", [0, K, "stack", U + 14])
def test_failed_user_reads_are_efault(src: int | str) -> None:
    assert probe("bpf_probe_read_user", 8, src) == (EFAULT, bytes(8) + b"\xff" * 16)


def test_size_zero() -> None:
    assert probe("bpf_probe_read_kernel", 0, K) == (0, b"\xff" * 24)
    assert probe("bpf_probe_read_kernel", 0, 0) == (ERANGE, b"\xff" * 24)  # the address check comes first
    assert probe("bpf_probe_read_user", 0, 0) == (0, b"\xff" * 24)


# -- string reads -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, r0, written", [
    (24, 8, b"kthread\0"),   # the string and its NUL; the rest of dst is left alone
    (8, 8, b"kthread\0"),
    (5, 5, b"kthr\0"),       # cut: size - 1 bytes and a NUL, returns size
    (1, 1, b"\0"),
])
def test_kernel_string_read(size: int, r0: int, written: bytes) -> None:
    assert probe("bpf_probe_read_kernel_str", size, K + 0x1000) == (r0, written + b"\xff" * (24 - len(written)))


def test_string_read_of_size_zero_reads_nothing() -> None:
    assert probe("bpf_probe_read_kernel_str", 0, 0) == (0, b"\xff" * 24)  # no address check either
    assert probe("bpf_probe_read_user_str", 0, 0) == (0, b"\xff" * 24)


def test_string_without_nul_before_unmapped_memory_faults() -> None:
    # "0123456789abcdefghij" has no NUL before the end of the mapping.
    assert probe("bpf_probe_read_kernel_str", 24, K) == (EFAULT, bytes(24))
    # ... but a short enough read never gets there.
    assert probe("bpf_probe_read_kernel_str", 20, K) == (20, b"0123456789abcdefghi\0" + b"\xff" * 4)


def test_kernel_string_errors() -> None:
    assert probe("bpf_probe_read_kernel_str", 8, 0) == (ERANGE, bytes(8) + b"\xff" * 16)
    assert probe("bpf_probe_read_kernel_str", 8, "stack") == (8, b"stack d\0" + b"\xff" * 16)


def test_user_string_read() -> None:
    assert probe("bpf_probe_read_user_str", 24, U) == (12, b"user string\0" + b"\xff" * 12)
    assert probe("bpf_probe_read_user_str", 8, "stack") == (EFAULT, bytes(8) + b"\xff" * 16)
    assert probe("bpf_probe_read_user_str", 8, U + 12) == (EFAULT, bytes(8) + b"\xff" * 16)  # "after" runs off


# -- bpf_probe_read: user below TASK_SIZE, kernel above ------------------------------------------------

@pytest.mark.parametrize("src, expected", [
    (U, (0, b"user str")),
    (K, (0, b"01234567")),
    ("stack", (0, b"stack da")),           # the program's regions are kernel memory
    (0, (EFAULT, bytes(8))),               # below TASK_SIZE: a failed user read
    (NON_CANONICAL, (ERANGE, bytes(8))),   # above: a refused kernel read
    (UNMAPPED_KERNEL, (EFAULT, bytes(8))),
])
def test_probe_read_picks_the_address_space(src: int | str, expected: tuple[int, bytes]) -> None:
    r0, mem = probe("bpf_probe_read", 8, src)
    assert (r0, mem[:8]) == expected


def test_probe_read_str_picks_the_address_space() -> None:
    assert probe("bpf_probe_read_str", 24, U)[0] == 12
    assert probe("bpf_probe_read_str", 24, K + 0x1000)[0] == 8
    assert probe("bpf_probe_read_str", 24, 0)[0] == EFAULT


# -- the destination ------------------------------------------------------------------------------------

def test_destination_must_be_writable_memory_of_the_program() -> None:
    with pytest.raises(MemoryFault) as info:
        probe("bpf_probe_read_kernel", 32, K, mem_size=24)  # dst is 24 bytes, size 32
    assert info.value.write and info.value.size == 32


def test_unsafe_memory_directly() -> None:
    class Machine:
        def __init__(self, env: HelperEnv) -> None:
            from ebpfvm.memory import MemoryMap
            self.env, self.memory = env, MemoryMap()

    memory = UnsafeMemory(Machine(_env()))  # type: ignore[arg-type]
    assert memory.kernel_bytes(K + 14, 4) == b"efgh"
    assert memory.kernel_string(K + 0x1000, 100) == b"kthread\0"
    assert memory.user_string(U, 5) == b"user\0"
    assert memory.is_user_address(U) and memory.is_user_address(0x1000)
    assert not memory.is_user_address(K) and not memory.is_user_address(NON_CANONICAL)
    assert memory.kernel_bytes(MASK64 - 2, 8) == EFAULT  # would wrap around the address space


def test_prototypes_follow_the_kernel() -> None:
    registry = default_registry()
    for helper_id in (4, 45, 112, 113, 114, 115):
        proto = registry[helper_id].proto
        assert proto.gpl_only
        assert proto.args == (ArgKind.PTR_TO_UNINIT_MEM, ArgKind.CONST_SIZE_OR_ZERO, ArgKind.ANYTHING)
    assert [registry[i].name for i in (4, 45, 112, 113, 114, 115)] == [
        "bpf_probe_read", "bpf_probe_read_str", "bpf_probe_read_user", "bpf_probe_read_kernel",
        "bpf_probe_read_user_str", "bpf_probe_read_kernel_str"]
