"""Flag values of the map API (include/uapi/linux/bpf.h), shared by the maps
and the helpers so that both read like the kernel."""

from __future__ import annotations

from typing import Final

# BPF_MAP_UPDATE_ELEM / bpf_map_update_elem / bpf_map_push_elem flags.
BPF_ANY: Final = 0
BPF_NOEXIST: Final = 1
BPF_EXIST: Final = 2
BPF_F_LOCK: Final = 4

# BPF_MAP_CREATE map_flags.
BPF_F_NO_PREALLOC: Final = 1 << 0
BPF_F_NO_COMMON_LRU: Final = 1 << 1
BPF_F_NUMA_NODE: Final = 1 << 2
BPF_F_RDONLY: Final = 1 << 3
BPF_F_WRONLY: Final = 1 << 4
BPF_F_STACK_BUILD_ID: Final = 1 << 5
BPF_F_ZERO_SEED: Final = 1 << 6
BPF_F_RDONLY_PROG: Final = 1 << 7
BPF_F_WRONLY_PROG: Final = 1 << 8
BPF_F_CLONE: Final = 1 << 9
BPF_F_MMAPABLE: Final = 1 << 10
BPF_F_PRESERVE_ELEMS: Final = 1 << 11
BPF_F_INNER_MAP: Final = 1 << 12
BPF_F_ACCESS_MASK: Final = BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG

# libbpf-style names of the BPF_MAP_CREATE flags, in bit order (for parsing and printing).
MAP_FLAG_NAMES: Final[dict[str, int]] = {
    "no_prealloc": BPF_F_NO_PREALLOC, "no_common_lru": BPF_F_NO_COMMON_LRU, "numa_node": BPF_F_NUMA_NODE,
    "rdonly": BPF_F_RDONLY, "wronly": BPF_F_WRONLY, "stack_build_id": BPF_F_STACK_BUILD_ID,
    "zero_seed": BPF_F_ZERO_SEED, "rdonly_prog": BPF_F_RDONLY_PROG, "wronly_prog": BPF_F_WRONLY_PROG,
    "clone": BPF_F_CLONE, "mmapable": BPF_F_MMAPABLE, "preserve_elems": BPF_F_PRESERVE_ELEMS,
    "inner_map": BPF_F_INNER_MAP,
}

# bpf_perf_event_output flags.
BPF_F_INDEX_MASK: Final = 0xFFFF_FFFF
BPF_F_CURRENT_CPU: Final = BPF_F_INDEX_MASK
BPF_F_CTXLEN_MASK: Final = 0xFFFFF << 32

# bpf_ringbuf_* flags and bpf_ringbuf_query selectors.
BPF_RB_NO_WAKEUP: Final = 1 << 0
BPF_RB_FORCE_WAKEUP: Final = 1 << 1
BPF_RB_AVAIL_DATA: Final = 0
BPF_RB_RING_SIZE: Final = 1
BPF_RB_CONS_POS: Final = 2
BPF_RB_PROD_POS: Final = 3

# Ring buffer record header bits (struct bpf_ringbuf_hdr.len).
BPF_RINGBUF_BUSY_BIT: Final = 1 << 31
BPF_RINGBUF_DISCARD_BIT: Final = 1 << 30
BPF_RINGBUF_HDR_SZ: Final = 8
