"""Helpers that transfer control: tail_call, loop (bpf_loop), for_each_map_elem.

* ``bpf_tail_call(ctx, prog_array, index)``: when ``index`` (a u32) is
  inside the array, fewer than 33 tail calls were taken in this run and the
  slot holds a program, that program replaces the running one -- same
  context in r1, a fresh stack, and its return value is the caller's (from a
  subprogram: that subprogram's). It does not return. Otherwise execution
  goes on after the call with r0 unchanged (the helper returns nothing; the
  verifier makes r0 unreadable there). Only taken tail calls count towards
  the limit, as in the x86-64 JIT ("Inc tail_call_cnt if the slot is
  populated", arch/x86/net/bpf_jit_comp.c) that runs programs on the
  kernels we compare with; the kernel's interpreter (kernel/bpf/core.c,
  ``JMP_TAIL_CALL``) would also count calls to an empty slot.
* ``bpf_loop(nr_loops, callback, ctx, flags)`` (kernel/bpf/bpf_iter.c): calls
  ``callback(i, ctx)`` for i = 0, 1, ... until it returns non-zero or
  ``nr_loops`` (a u32, at most 1 << 23: -E2BIG) calls ran; returns the
  number of calls. flags must be 0 (-EINVAL).
* ``bpf_for_each_map_elem(map, callback, ctx, flags)``: calls
  ``callback(map, &key, &value, ctx)`` for each element (array: every index;
  hash: every key present, in the map's order) until it returns non-zero;
  returns the number of calls. The key lies in a read-only region of its own,
  the value is the map's own storage (the callback may update it).

Callbacks run as nested calls of the interpreter (``Machine.call_function``):
a new frame, the run's budget.
"""

from __future__ import annotations

import errno
from typing import Any, Iterable

from ..errors import ProgramFault
from ..memory import Region, code_pc
from .packet import HelperUnavailable, run_state
from .prototype import ArgKind, Prototype, RetKind
from .registry import HelperRegistry

BPF_TAIL_CALL = 12
BPF_FOR_EACH_MAP_ELEM = 164
BPF_LOOP = 181

MAX_TAIL_CALL_CNT = 33
BPF_MAX_LOOPS = 1 << 23
MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

# Keys handed to for_each_map_elem callbacks live here, one page per nesting
# level (callbacks may iterate maps themselves). Far from every other region
# of the layout in ebpfvm.memory.
CALLBACK_KEY_BASE = 0x6000_0000_0000
CALLBACK_KEY_STRIDE = 0x1000

_ARRAYS = ("array", "percpu_array")
_HASHES = ("hash", "percpu_hash", "lru_hash", "lru_percpu_hash")


class BadCallback(ProgramFault):
    """A callback argument that is not the address of a subprogram."""

    def __init__(self, pc: int, helper: str, value: int) -> None:
        self.helper = helper
        self.value = value
        super().__init__(f"{helper}: {value:#x} is not the address of a subprogram", pc)


def _callback_pc(machine: Any, helper: str, value: int) -> int:
    target = code_pc(value)
    if target is None or target >= len(machine.program):
        raise BadCallback(machine.pc, helper, value)
    return target


def tail_call(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """void bpf_tail_call(ctx, prog_array, u32 index)."""
    state = run_state(machine, "bpf_tail_call")
    if machine.callback_depth:
        raise HelperUnavailable(machine.pc, "bpf_tail_call", "not allowed inside a callback")
    prog_array = machine.map_at(r2)
    slot_of = getattr(prog_array, "program_at", None)
    if slot_of is None:
        raise HelperUnavailable(machine.pc, "bpf_tail_call", f"map {prog_array.name!r} is not a prog_array")
    index = r3 & MASK32
    unchanged = machine.regs[0]
    if index >= prog_array.max_entries or state.tail_calls >= MAX_TAIL_CALL_CNT:
        return unchanged
    target = state.program_code(slot_of(index))
    if target is None:
        return unchanged
    state.tail_calls += 1
    machine.replace_program(*target)  # does not return


def loop(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_loop(u32 nr_loops, callback, void *ctx, u64 flags)."""
    nr_loops = r1 & MASK32
    if r4:
        return -errno.EINVAL & MASK64
    if nr_loops > BPF_MAX_LOOPS:
        return -errno.E2BIG & MASK64
    target = _callback_pc(machine, "bpf_loop", r2)
    call = machine.call_function
    for i in range(nr_loops):  # bounded by BPF_MAX_LOOPS and by the run's budget
        if call(target, (i, r3, 0, 0, 0)):
            return i + 1
    return nr_loops


def for_each_map_elem(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_for_each_map_elem(map, callback, void *ctx, u64 flags)."""
    if r4:
        return -errno.EINVAL & MASK64
    bpf_map = machine.map_at(r1)
    target = _callback_pc(machine, "bpf_for_each_map_elem", r2)
    keys: Iterable[bytes]
    if bpf_map.map_type in _ARRAYS:
        keys = (i.to_bytes(4, "little") for i in range(bpf_map.max_entries))
    elif bpf_map.map_type in _HASHES:
        keys = list(bpf_map.keys())  # a snapshot: the callback may delete elements
    else:
        raise HelperUnavailable(machine.pc, "bpf_for_each_map_elem",
                                f"not supported for {bpf_map.map_type} maps (the kernel's verifier refuses it)")
    cpu = machine.env.cpu_id
    key_region = Region(f"for_each key {machine.depth}", CALLBACK_KEY_BASE + machine.depth * CALLBACK_KEY_STRIDE,
                        bytearray(bpf_map.key_size), writable=False)
    memory = machine.memory
    memory.add(key_region)
    calls = 0
    try:
        for key in keys:  # bounded by max_entries
            value = bpf_map.lookup_address(key, cpu)
            if not value:
                continue  # deleted by an earlier callback
            key_region.data[:] = key
            calls += 1
            if machine.call_function(target, (r1, key_region.base, value, r3, 0)):
                break
    finally:
        memory.remove_region(key_region)
    return calls


_PROTOTYPES = {
    BPF_TAIL_CALL: Prototype(RetKind.VOID, (ArgKind.PTR_TO_CTX, ArgKind.CONST_MAP_PTR, ArgKind.ANYTHING)),
    BPF_LOOP: Prototype(RetKind.INTEGER, (ArgKind.ANYTHING, ArgKind.PTR_TO_FUNC, ArgKind.PTR_TO_STACK,
                                          ArgKind.ANYTHING)),
    BPF_FOR_EACH_MAP_ELEM: Prototype(RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, ArgKind.PTR_TO_FUNC,
                                                       ArgKind.PTR_TO_STACK, ArgKind.ANYTHING)),
}


def register(registry: HelperRegistry) -> HelperRegistry:
    registry.register(BPF_TAIL_CALL, tail_call, proto=_PROTOTYPES[BPF_TAIL_CALL])
    registry.register(BPF_LOOP, loop, proto=_PROTOTYPES[BPF_LOOP])
    registry.register(BPF_FOR_EACH_MAP_ELEM, for_each_map_elem, proto=_PROTOTYPES[BPF_FOR_EACH_MAP_ELEM])
    return registry
