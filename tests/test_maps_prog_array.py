"""prog_array and the maps of maps (array_of_maps, hash_of_maps): slots
holding program references or inner maps, their update rules, and binding
the inner maps into a run (bind_maps) so a program can use them."""

from __future__ import annotations

import errno

import pytest

from ebpfvm.memory import MemoryMap, map_window
from ebpfvm.maps import (BPF_EXIST, BPF_F_INNER_MAP, BPF_NOEXIST, ArrayOfMapsMap, HashOfMapsMap, MapDefinition,
                         MapError, ProgArrayMap, bind_maps, create_map, map_pseudo_resolver)
from ebpfvm.isa.instruction import Instruction


def errno_of(call: object) -> int:
    with pytest.raises(MapError) as info:
        call()  # type: ignore[operator]
    return info.value.errno


def test_prog_array_slots() -> None:
    jumps = create_map(MapDefinition("jmp", "prog_array", 4, 4, 4, initial_slots=((1, "stage2"),)))
    assert isinstance(jumps, ProgArrayMap)
    assert jumps.program_at(1) == "stage2" and jumps.program_at(0) is None and jumps.program_at(9) is None
    target = object()
    jumps.update(2, target)
    assert jumps.lookup(2) is target and len(jumps) == 2
    assert errno_of(lambda: jumps.update(2, target, BPF_NOEXIST)) == errno.EINVAL  # fd arrays: BPF_ANY only
    assert errno_of(lambda: jumps.update(4, target)) == errno.E2BIG
    jumps.delete(2)
    assert errno_of(lambda: jumps.delete(2)) == errno.ENOENT
    assert errno_of(lambda: jumps.delete(4)) == errno.E2BIG
    assert jumps.lookup_address((1).to_bytes(4, "little"), cpu=0) == 0  # programs cannot read it
    assert errno_of(lambda: create_map(MapDefinition("j", "prog_array", 4, 4, 2,
                                                     initial_slots=((5, "far"),)))) == errno.E2BIG


INNER = MapDefinition("inner", "array", 4, 8, 2)


def test_array_of_maps_checks_inner_maps_against_the_template() -> None:
    outer = create_map(MapDefinition("outer", "array_of_maps", 4, 4, 2, inner=INNER))
    assert isinstance(outer, ArrayOfMapsMap)
    good = create_map(MapDefinition("a", "array", 4, 8, 2))
    outer.update(0, good)
    assert outer.lookup(0) is good
    for bad in (MapDefinition("b", "array", 4, 16, 2), MapDefinition("c", "array", 4, 8, 3),
                MapDefinition("d", "hash", 4, 8, 2)):
        assert errno_of(lambda: outer.update(1, create_map(bad))) == errno.EINVAL
    assert errno_of(lambda: outer.update(1, b"\x03\0\0\0")) == errno.EBADF
    flexible = create_map(MapDefinition("o2", "array_of_maps", 4, 4, 1,
                                        inner=MapDefinition("t", "array", 4, 8, 1, flags=BPF_F_INNER_MAP)))
    flexible.update(0, create_map(MapDefinition("big", "array", 4, 8, 100, flags=BPF_F_INNER_MAP)))
    assert errno_of(lambda: create_map(MapDefinition("o3", "array_of_maps", 4, 4, 1))) == errno.EINVAL


def test_hash_of_maps_flags_and_capacity() -> None:
    outer = create_map(MapDefinition("outer", "hash_of_maps", 4, 4, 1, inner=INNER))
    assert isinstance(outer, HashOfMapsMap)
    inner = create_map(INNER)
    assert errno_of(lambda: outer.update(7, inner, BPF_EXIST)) == errno.ENOENT
    outer.update(7, inner)
    assert errno_of(lambda: outer.update(7, inner, BPF_NOEXIST)) == errno.EEXIST
    assert errno_of(lambda: outer.update(8, inner)) == errno.E2BIG
    assert outer.lookup(7) is inner and outer.keys() == [(7).to_bytes(4, "little")]
    outer.delete(7)
    assert errno_of(lambda: outer.delete(7)) == errno.ENOENT


def test_bind_maps_binds_inner_maps_and_lookups_return_their_handles() -> None:
    inner_a = create_map(MapDefinition("a", "array", 4, 8, 2))
    inner_b = create_map(MapDefinition("b", "array", 4, 8, 2))
    outer = create_map(MapDefinition("outer", "array_of_maps", 4, 4, 2, inner=INNER,
                                     initial_slots=((0, "a"), (1, "b"))))
    outer.resolve_initial_slots({"a": inner_a, "b": inner_b})
    counters = create_map(MapDefinition("counters", "array", 4, 8, 1))
    memory = MemoryMap()
    handles = bind_maps(memory, [outer, counters, inner_a])  # inner_a is a program map too
    assert handles == {map_window(0): outer, map_window(1): counters, map_window(2): inner_a,
                       map_window(3): inner_b}
    assert outer.lookup_address((1).to_bytes(4, "little"), cpu=0) == map_window(3)
    inner_b.update(1, (42).to_bytes(8, "little"))
    address = inner_b.lookup_address((1).to_bytes(4, "little"), cpu=0)
    assert memory.read(address, 8) == 42
    with pytest.raises(MapError):
        create_map(MapDefinition("o", "array_of_maps", 4, 4, 1, initial_slots=((0, "zz"),),
                                 inner=INNER)).resolve_initial_slots({})


def test_pseudo_resolver_gives_handles_and_value_addresses() -> None:
    data = create_map(MapDefinition(".data", "array", 4, 16, 1))
    table = create_map(MapDefinition("t", "hash", 4, 4, 1))
    resolve = map_pseudo_resolver([table, data])
    tail = Instruction(0, 0, 0, 0, 12)
    assert resolve(0, Instruction(0x18, 1, 1, 0, 1), tail) == map_window(1)
    assert resolve(0, Instruction(0x18, 1, 2, 0, 1), tail) == map_window(1) + 4096 + 12
    assert resolve(0, Instruction(0x18, 1, 2, 0, 0), tail) is None  # a hash map has no value address
    assert resolve(0, Instruction(0x18, 1, 1, 0, 2), tail) is None  # no such map
