"""Putting a run's maps into its memory and resolving lddw map references.

A runtime calls ``bind_maps`` before every run (the machine drops its regions
between runs; map storage persists) and installs ``map_pseudo_resolver`` as
the interpreter's ``resolve_pseudo`` hook. Map ``i`` of a program lives in
window ``map_window(first_window + i)``; maps reachable only through a map
of maps get the windows after those, so that a program can use the handle a
lookup in the outer map returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from ..memory import map_window
from .base import BpfMap
from .errors import MapError
from .map_in_map import ArrayOfMapsMap, HashOfMapsMap

if TYPE_CHECKING:
    from ..isa.instruction import Instruction
    from ..memory import MemoryMap

# lddw src values naming a map by index (BPF_PSEUDO_MAP_FD / _IDX) and a
# map value address (BPF_PSEUDO_MAP_VALUE / _IDX_VALUE). Our indices are
# indices into Program.maps, so the fd and idx forms mean the same here.
_MAP_HANDLE_SOURCES = (1, 5)
_MAP_VALUE_SOURCES = (2, 6)


def bind_maps(memory: "MemoryMap", maps: Sequence[BpfMap], *, first_window: int = 0) -> dict[int, BpfMap]:
    """Bind ``maps[i]`` at ``map_window(first_window + i)``, then every inner
    map of a map of maps not bound yet; return handle -> map (for
    ``Machine.maps``)."""
    bound: dict[int, BpfMap] = {}
    seen: set[int] = set()
    window = first_window
    pending = list(maps)
    while pending:  # bounded: each map is bound once, inner maps cannot nest further
        bpf_map = pending.pop(0)
        if id(bpf_map) in seen:
            continue
        seen.add(id(bpf_map))
        base = map_window(window)
        window += 1
        bpf_map.bind(memory, base)
        bound[base] = bpf_map
        if isinstance(bpf_map, (ArrayOfMapsMap, HashOfMapsMap)):
            pending.extend(bpf_map.inner_maps())
    return bound


def map_pseudo_resolver(maps: Sequence[BpfMap], *, first_window: int = 0
                        ) -> Callable[[int, "Instruction", "Instruction"], int | None]:
    """A ``resolve_pseudo`` hook for ``Interpreter``: ``lddw rX, map_fd i``
    loads map ``i``'s handle and ``lddw rX, map_value i, off`` the address of
    its value + off, for the windows ``bind_maps`` gives them. Returns None
    (the lddw faults when executed) for an index past the end or a map
    without a direct value address."""

    def resolve(pc: int, head: "Instruction", tail: "Instruction") -> int | None:
        index = head.imm
        if not 0 <= index < len(maps):
            return None
        base = map_window(first_window + index)
        if head.src in _MAP_HANDLE_SOURCES:
            return base
        if head.src in _MAP_VALUE_SOURCES:
            try:
                return maps[index].value_address(tail.imm, base)
            except MapError:  # no direct value address: the lddw faults when run
                return None
        return None

    return resolve
