"""Resolving lddw pseudo sources for one program of a runtime.

The shared contract: ``lddw rX, map_fd i`` (src 1) names map ``i`` of the
program's ``maps`` and loads the map's handle, the base of its window;
``lddw rX, map_value i, off`` (src 2) loads the address of byte ``off`` of
that map's value (arrays and global data: key 0). The fd_array forms (src 5
and 6) index the same list. Function addresses (src 4) the interpreter
resolves itself. Anything else, or an index with no map, stays unresolved:
the interpreter faults if the instruction runs.
"""

from __future__ import annotations

from typing import Callable

from ..isa.instruction import Instruction
from ..isa.load_store import LddwSource
from ..maps.errors import MapError

# map index of the program -> (map object, its window base), or None
MapLocator = Callable[[int], "tuple[object, int] | None"]
PseudoResolver = Callable[[int, Instruction, Instruction], "int | None"]

_HANDLE_SOURCES = (LddwSource.MAP_FD, LddwSource.MAP_IDX)
_VALUE_SOURCES = (LddwSource.MAP_VALUE, LddwSource.MAP_IDX_VALUE)


def make_resolver(locate: MapLocator) -> PseudoResolver:
    """The interpreter's ``resolve_pseudo`` hook over ``locate``."""

    def resolve(pc: int, head: Instruction, tail: Instruction) -> int | None:
        if head.src not in _HANDLE_SOURCES and head.src not in _VALUE_SOURCES:
            return None
        found = locate(head.imm)
        if found is None:
            return None
        bpf_map, window = found
        if head.src in _HANDLE_SOURCES:
            return window
        try:
            return bpf_map.value_address(tail.imm & 0xFFFF_FFFF, window)  # type: ignore[attr-defined]
        except (MapError, AttributeError, TypeError):
            return None  # not a map with a direct value: faults only if it runs
    return resolve
