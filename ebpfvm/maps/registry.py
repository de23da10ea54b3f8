"""Map types by the kernel's name, and ``create_map``."""

from __future__ import annotations

import errno

from .array import ArrayMap, PercpuArrayMap
from .base import BpfMap
from .definition import MapDefinition
from .errors import MapError
from .hash import HashMap, LruHashMap, LruPercpuHashMap, PercpuHashMap
from .lpm_trie import LpmTrieMap
from .map_in_map import ArrayOfMapsMap, HashOfMapsMap
from .perf_event_array import PerfEventArrayMap
from .prog_array import ProgArrayMap
from .queue_stack import QueueMap, StackMap
from .ringbuf import RingBufMap

# The kernel's map type names without BPF_MAP_TYPE_, lowercase.
MAP_TYPES: dict[str, type[BpfMap]] = {
    cls.map_type: cls
    for cls in (HashMap, ArrayMap, ProgArrayMap, PerfEventArrayMap, PercpuHashMap, PercpuArrayMap,
                LruHashMap, LruPercpuHashMap, LpmTrieMap, ArrayOfMapsMap, HashOfMapsMap, QueueMap, StackMap,
                RingBufMap)
}


def map_class(map_type: str) -> type[BpfMap]:
    """The class of ``map_type`` ("hash", "BPF_MAP_TYPE_HASH", ...)."""
    name = map_type.strip().lower().removeprefix("bpf_map_type_")
    cls = MAP_TYPES.get(name)
    if cls is None:
        supported = ", ".join(sorted(MAP_TYPES))
        raise MapError(errno.EINVAL, f"map type {map_type!r} is not supported (supported: {supported})")
    return cls


def create_map(defn: MapDefinition, *, num_cpus: int = 2) -> BpfMap:
    """A new, empty (or initialised, for global data) map as ``defn`` says.
    Raises ``MapError`` with the errno BPF_MAP_CREATE would give for a
    definition the kernel refuses, and for an unsupported type."""
    try:
        cls = map_class(defn.map_type)
    except MapError as e:
        raise MapError(e.errno, e.message, defn.name) from None
    return cls(defn, num_cpus=num_cpus)
