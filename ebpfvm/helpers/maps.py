"""Map element helpers: map_lookup_elem, map_update_elem, map_delete_elem,
map_push_elem, map_pop_elem, map_peek_elem.

Each reads its key and value from the program's memory (a bad pointer faults
as a load would), finds the map by the handle in r1 (``Machine.map_at``) and
calls the map's BPF-side operation, which returns what the kernel's would: a
value address or 0, or 0 / -errno (as an unsigned 64-bit number in r0). The
CPU is the env's ``cpu_id``.

A program may not write a map that is read-only for programs (.rodata,
BPF_F_RDONLY_PROG); the kernel's verifier refuses such a call, and here it
returns -EPERM.
"""

from __future__ import annotations

import errno
from typing import Any

from .prototype import ArgFlag, ArgKind, Prototype, RetKind
from .registry import HelperRegistry

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_PUSH_ELEM = 87
BPF_MAP_POP_ELEM = 88
BPF_MAP_PEEK_ELEM = 89

MASK64 = (1 << 64) - 1

_LOOKUP = Prototype(RetKind.PTR_TO_MAP_VALUE_OR_NULL, (ArgKind.CONST_MAP_PTR, ArgKind.PTR_TO_MAP_KEY))
_UPDATE = Prototype(RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, ArgKind.PTR_TO_MAP_KEY, ArgKind.PTR_TO_MAP_VALUE,
                                      ArgKind.ANYTHING))
_DELETE = Prototype(RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, ArgKind.PTR_TO_MAP_KEY))
_PUSH = Prototype(RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, ArgKind.PTR_TO_MAP_VALUE, ArgKind.ANYTHING))
# pop and peek write the whole value (MEM_UNINIT | MEM_WRITE).
_POP = Prototype(RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, ArgKind.PTR_TO_MAP_VALUE),
                 arg_flags=(ArgFlag.NONE, ArgFlag.UNINIT | ArgFlag.WRITE))


def map_lookup_elem(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """void *bpf_map_lookup_elem(map, key): the value's address or NULL."""
    bpf_map = machine.map_at(r1)
    key = machine.memory.read_bytes(r2, bpf_map.key_size, machine.pc)
    return bpf_map.lookup_address(key, machine.env.cpu_id)


def map_update_elem(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_map_update_elem(map, key, value, flags)."""
    bpf_map = machine.map_at(r1)
    key = machine.memory.read_bytes(r2, bpf_map.key_size, machine.pc)
    value = machine.memory.read_bytes(r3, bpf_map.value_size, machine.pc)
    if bpf_map.read_only_prog:
        return -errno.EPERM & MASK64
    return bpf_map.update_elem(key, value, r4, machine.env.cpu_id) & MASK64


def map_delete_elem(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_map_delete_elem(map, key)."""
    bpf_map = machine.map_at(r1)
    key = machine.memory.read_bytes(r2, bpf_map.key_size, machine.pc)
    if bpf_map.read_only_prog:
        return -errno.EPERM & MASK64
    return bpf_map.delete_elem(key) & MASK64


def map_push_elem(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_map_push_elem(map, value, flags)."""
    bpf_map = machine.map_at(r1)
    value = machine.memory.read_bytes(r2, bpf_map.value_size, machine.pc)
    if bpf_map.read_only_prog:
        return -errno.EPERM & MASK64
    return bpf_map.push_elem(value, r3) & MASK64


def _take(machine: Any, r1: int, r2: int, pop: bool) -> int:
    bpf_map = machine.map_at(r1)
    # Check the destination first, so a bad pointer faults before the map changes.
    machine.memory.locate(r2, max(bpf_map.value_size, 1), True, machine.pc)
    if pop and bpf_map.read_only_prog:
        return -errno.EPERM & MASK64
    err, value = bpf_map.pop_elem() if pop else bpf_map.peek_elem()
    machine.memory.write_bytes(r2, value, machine.pc)  # zeros when empty, as the kernel
    return err & MASK64


def map_pop_elem(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_map_pop_elem(map, value): remove the next element into value."""
    return _take(machine, r1, r2, pop=True)


def map_peek_elem(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_map_peek_elem(map, value): copy the next element into value."""
    return _take(machine, r1, r2, pop=False)


def register(registry: HelperRegistry) -> HelperRegistry:
    registry.register(BPF_MAP_LOOKUP_ELEM, map_lookup_elem, proto=_LOOKUP)
    registry.register(BPF_MAP_UPDATE_ELEM, map_update_elem, proto=_UPDATE)
    registry.register(BPF_MAP_DELETE_ELEM, map_delete_elem, proto=_DELETE)
    registry.register(BPF_MAP_PUSH_ELEM, map_push_elem, proto=_PUSH)
    registry.register(BPF_MAP_POP_ELEM, map_pop_elem, proto=_POP)
    registry.register(BPF_MAP_PEEK_ELEM, map_peek_elem, proto=_POP)
    return registry
