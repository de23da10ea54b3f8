"""The sandboxed address space on its own: regions, checked access, faults."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.errors import MemoryFault
from ebpfvm.memory import (CODE_BASE, MEM_BASE, STACK_SIZE, MemoryMap, Region, code_address, code_pc,
                           stack_frame_base)


def two_regions() -> MemoryMap:
    memory = MemoryMap()
    memory.add_region("mem", MEM_BASE, bytes(range(16)))
    memory.add_region("stack frame 0", stack_frame_base(0), STACK_SIZE)
    return memory


def test_layout_is_distinctive_and_disjoint() -> None:
    bases = [MEM_BASE, CODE_BASE] + [stack_frame_base(k) for k in range(8)]
    assert min(bases) >= 0x1000_0000_0000  # far from NULL and small integers
    assert len(set(bases)) == len(bases)
    frames = sorted(stack_frame_base(k) for k in range(8))
    assert all(b - a > STACK_SIZE for a, b in zip(frames, frames[1:]))  # guard gap between frames
    assert code_pc(code_address(17)) == 17
    assert code_pc(MEM_BASE) is None and code_pc(code_address(3) + 4) is None


def test_read_and_write_little_endian() -> None:
    memory = two_regions()
    assert memory.read(MEM_BASE, 1) == 0
    assert memory.read(MEM_BASE + 1, 2) == 0x0201
    assert memory.read(MEM_BASE + 4, 4) == 0x0706_0504
    assert memory.read(MEM_BASE + 8, 8) == 0x0F0E_0D0C_0B0A_0908
    memory.write(MEM_BASE, 4, 0x1_DDCC_BBAA)  # only the low 4 bytes are stored
    assert memory.read_bytes(MEM_BASE, 5) == b"\xaa\xbb\xcc\xdd\x04"


def test_alternating_regions_hit_the_right_data() -> None:
    memory = two_regions()
    top = stack_frame_base(0) + STACK_SIZE
    for i in range(8):
        memory.write(top - 8, 8, i)
        assert memory.read(MEM_BASE + i, 1) == i
        assert memory.read(top - 8, 8) == i


@pytest.mark.parametrize("address, size, nearest", [
    (MEM_BASE + 15, 2, "mem"),          # straddles the end
    (MEM_BASE + 16, 1, "mem"),          # one past the end
    (MEM_BASE - 1, 1, "mem"),           # one before the start
    (0, 8, "mem"),                      # NULL: mem is the closest region
    (stack_frame_base(0) - 8, 8, "stack frame 0"),
    (stack_frame_base(0) + STACK_SIZE, 1, "stack frame 0"),
])
def test_faults_carry_address_size_and_nearest_region(address: int, size: int, nearest: str) -> None:
    memory = two_regions()
    with pytest.raises(MemoryFault) as info:
        memory.read(address, size, pc=7)
    fault = info.value
    assert (fault.pc, fault.address, fault.size, fault.write) == (7, address, size, False)
    assert fault.nearest.startswith(nearest + " [")
    with pytest.raises(MemoryFault) as info:
        memory.write(address, size, 0, pc=8)
    assert info.value.write and info.value.pc == 8


def test_fault_message_names_the_region_range() -> None:
    memory = two_regions()
    with pytest.raises(MemoryFault) as info:
        memory.read(MEM_BASE + 20, 4, pc=3)
    text = str(info.value)
    assert text == (f"insn 3: invalid read of 4 bytes at {MEM_BASE + 20:#x}; "
                    f"nearest region: mem [{MEM_BASE:#x}-{MEM_BASE + 15:#x}]")


def test_negative_and_huge_addresses_fault() -> None:
    memory = two_regions()
    with pytest.raises(MemoryFault) as info:
        memory.read(-8, 8)
    assert info.value.address == 2**64 - 8
    with pytest.raises(MemoryFault):
        memory.read(2**64 + MEM_BASE, 1)  # no wrap-around into mem


def test_empty_map_faults_with_no_nearest_region() -> None:
    with pytest.raises(MemoryFault) as info:
        MemoryMap().read(0x1234, 4)
    assert info.value.nearest is None
    assert "nearest" not in str(info.value)


def test_read_only_region() -> None:
    memory = MemoryMap()
    memory.add_region("ctx", MEM_BASE, b"\x2a\0\0\0", writable=False)
    assert memory.read(MEM_BASE, 4) == 42
    with pytest.raises(MemoryFault) as info:
        memory.write(MEM_BASE, 4, 1)
    assert info.value.nearest == f"ctx [{MEM_BASE:#x}-{MEM_BASE + 3:#x}] (read-only)"
    with pytest.raises(MemoryFault):
        memory.write_bytes(MEM_BASE, b"\x01")
    assert memory.read(MEM_BASE, 4) == 42


def test_overlapping_regions_are_rejected() -> None:
    memory = two_regions()
    with pytest.raises(ValueError, match="overlaps"):
        memory.add_region("bad", MEM_BASE + 8, 16)
    with pytest.raises(ValueError, match="overlaps"):
        memory.add_region("bad", MEM_BASE - 8, 9)
    with pytest.raises(ValueError, match="already mapped"):
        memory.add_region("mem", 0x6000_0000_0000, 1)
    memory.add_region("adjacent", MEM_BASE + 16, 4)  # touching is fine
    assert memory.read(MEM_BASE + 16, 1) == 0
    with pytest.raises(MemoryFault):
        memory.read(MEM_BASE + 14, 4)  # but one access cannot span two regions


def test_removed_region_is_no_longer_reachable() -> None:
    memory = two_regions()
    assert memory.read(MEM_BASE, 1) == 0  # primes the last-hit cache
    memory.write(MEM_BASE, 1, 5)
    removed = memory.remove_region("mem")
    assert removed.data[0] == 5
    assert "mem" not in memory and len(memory) == 1
    with pytest.raises(MemoryFault):
        memory.read(MEM_BASE, 1)
    with pytest.raises(MemoryFault):
        memory.write(MEM_BASE, 1, 0)


def test_region_uses_the_given_bytearray_in_place() -> None:
    data = bytearray(4)
    memory = MemoryMap()
    region = memory.add_region("buf", MEM_BASE, data)
    memory.write(MEM_BASE + 1, 2, 0xBEEF)
    assert data == bytearray(b"\0\xef\xbe\0")
    assert memory.region("buf") is region and memory.find(MEM_BASE + 3) is region
    assert memory.find(MEM_BASE + 3, 2) is None
    assert [r.name for r in memory] == ["buf"]
    assert region.describe() == f"buf [{MEM_BASE:#x}-{MEM_BASE + 3:#x}]"


def test_region_validation() -> None:
    with pytest.raises(TypeError):
        Region("x", 0, b"abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Region("x", 2**64 - 2, bytearray(4))


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(-64, 64 + 16), size=st.sampled_from([1, 2, 4, 8]))
def test_access_is_allowed_exactly_inside(offset: int, size: int) -> None:
    memory = two_regions()
    inside = 0 <= offset and offset + size <= 16
    try:
        memory.read(MEM_BASE + offset, size)
        allowed = True
    except MemoryFault:
        allowed = False
    assert allowed is inside
