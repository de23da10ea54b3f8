"""eBPF maps: storage shared by programs (through helpers and pointers into
values) and Python (a bpf(2)-like API with numpy views).

``create_map(MapDefinition(...))`` makes one; ``MAP_TYPES`` lists the
supported types by the kernel's name. See ``base`` for the two faces of a
map, and each type's module for the kernel semantics it reproduces.
"""

from .array import ArrayMap, PercpuArrayMap
from .base import PAGE_SIZE, VALUES_OFFSET, BpfMap
from .binding import bind_maps, map_pseudo_resolver
from .definition import MapDefinition
from .errors import ENOTSUPP, MapError, MapFault
from .flags import (BPF_ANY, BPF_EXIST, BPF_F_CURRENT_CPU, BPF_F_INNER_MAP, BPF_F_LOCK, BPF_F_NO_COMMON_LRU,
                    BPF_F_NO_PREALLOC, BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_NOEXIST, BPF_RB_AVAIL_DATA,
                    BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_PROD_POS, BPF_RB_RING_SIZE)
from .hash import HashMap, LruHashMap, LruPercpuHashMap, PercpuHashMap
from .lpm_trie import LpmTrieMap
from .map_in_map import ArrayOfMapsMap, HashOfMapsMap
from .perf_event_array import PerfEvent, PerfEventArrayMap
from .prog_array import ProgArrayMap
from .queue_stack import QueueMap, StackMap
from .registry import MAP_TYPES, create_map, map_class
from .ringbuf import RingBufMap

__all__ = [
    "ArrayMap", "ArrayOfMapsMap", "BPF_ANY", "BPF_EXIST", "BPF_F_CURRENT_CPU", "BPF_F_INNER_MAP", "BPF_F_LOCK",
    "BPF_F_NO_COMMON_LRU", "BPF_F_NO_PREALLOC", "BPF_F_RDONLY", "BPF_F_RDONLY_PROG", "BPF_NOEXIST",
    "BPF_RB_AVAIL_DATA", "BPF_RB_CONS_POS", "BPF_RB_FORCE_WAKEUP", "BPF_RB_NO_WAKEUP", "BPF_RB_PROD_POS",
    "BPF_RB_RING_SIZE", "BpfMap", "ENOTSUPP", "HashMap", "HashOfMapsMap", "LpmTrieMap", "LruHashMap",
    "LruPercpuHashMap", "MAP_TYPES", "MapDefinition", "MapError", "MapFault", "PAGE_SIZE", "PercpuArrayMap",
    "PercpuHashMap", "PerfEvent", "PerfEventArrayMap", "ProgArrayMap", "QueueMap", "RingBufMap", "StackMap",
    "VALUES_OFFSET", "bind_maps", "create_map", "map_class", "map_pseudo_resolver",
]
