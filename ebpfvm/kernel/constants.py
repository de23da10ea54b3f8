"""Numbers from include/uapi/linux/bpf.h and their libbpf-style names.

Names are the enum member lowercased without its prefix, as libbpf spells them
(``BPF_PROG_TYPE_SCHED_CLS`` -> ``"sched_cls"``, ``BPF_CGROUP_INET_INGRESS`` ->
``"cgroup_inet_ingress"``).  The tables follow the enums' order, so the
number of an entry is its position; the newest entries may be unknown to the
running kernel (it answers EINVAL).
"""

from __future__ import annotations

from typing import Final

from ebpfvm.kernel.errors import KernelArgumentError
# Map creation and update flags belong to the map API: one definition, re-exported here.
from ebpfvm.maps.flags import (BPF_ANY, BPF_EXIST, BPF_F_INNER_MAP, BPF_F_LOCK, BPF_F_MMAPABLE,  # noqa: F401
                               BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_RDONLY,
                               BPF_F_RDONLY_PROG, BPF_F_WRONLY, BPF_F_WRONLY_PROG, BPF_F_ZERO_SEED, BPF_NOEXIST)

PROG_TYPE_NAMES: Final[tuple[str, ...]] = (
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
)

MAP_TYPE_NAMES: Final[tuple[str, ...]] = (
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
)

ATTACH_TYPE_NAMES: Final[tuple[str, ...]] = (
    "cgroup_inet_ingress",
    "cgroup_inet_egress",
    "cgroup_inet_sock_create",
    "cgroup_sock_ops",
    "sk_skb_stream_parser",
    "sk_skb_stream_verdict",
    "cgroup_device",
    "sk_msg_verdict",
    "cgroup_inet4_bind",
    "cgroup_inet6_bind",
    "cgroup_inet4_connect",
    "cgroup_inet6_connect",
    "cgroup_inet4_post_bind",
    "cgroup_inet6_post_bind",
    "cgroup_udp4_sendmsg",
    "cgroup_udp6_sendmsg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_sysctl",
    "cgroup_udp4_recvmsg",
    "cgroup_udp6_recvmsg",
    "cgroup_getsockopt",
    "cgroup_setsockopt",
    "trace_raw_tp",
    "trace_fentry",
    "trace_fexit",
    "modify_return",
    "lsm_mac",
    "trace_iter",
    "cgroup_inet4_getpeername",
    "cgroup_inet6_getpeername",
    "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname",
    "xdp_devmap",
    "cgroup_inet_sock_release",
    "xdp_cpumap",
    "sk_lookup",
    "xdp",
    "sk_skb_verdict",
    "sk_reuseport_select",
    "sk_reuseport_select_or_migrate",
    "perf_event",
    "trace_kprobe_multi",
    "lsm_cgroup",
    "struct_ops",
    "netfilter",
    "tcx_ingress",
    "tcx_egress",
    "trace_uprobe_multi",
    "cgroup_unix_connect",
    "cgroup_unix_sendmsg",
    "cgroup_unix_recvmsg",
    "cgroup_unix_getpeername",
    "cgroup_unix_getsockname",
    "netkit_primary",
    "netkit_peer",
    "trace_kprobe_session",
    "trace_uprobe_session",
)

# Module-level BPF_PROG_TYPE_* / BPF_MAP_TYPE_* / BPF_<attach> integers, for
# code that prefers the C spelling.
for _n, _entry in enumerate(PROG_TYPE_NAMES):
    globals()[f"BPF_PROG_TYPE_{_entry.upper()}"] = _n
for _n, _entry in enumerate(MAP_TYPE_NAMES):
    globals()[f"BPF_MAP_TYPE_{_entry.upper()}"] = _n
for _n, _entry in enumerate(ATTACH_TYPE_NAMES):
    globals()[f"BPF_{_entry.upper()}"] = _n
del _n, _entry

# The most used ones spelled out so linters and readers can find them.
BPF_PROG_TYPE_SOCKET_FILTER: Final = 1
BPF_PROG_TYPE_SCHED_CLS: Final = 3
BPF_PROG_TYPE_XDP: Final = 6
BPF_PROG_TYPE_TRACING: Final = 26
BPF_PROG_TYPE_SYSCALL: Final = 31
BPF_MAP_TYPE_HASH: Final = 1
BPF_MAP_TYPE_ARRAY: Final = 2
BPF_MAP_TYPE_PERCPU_HASH: Final = 5
BPF_MAP_TYPE_PERCPU_ARRAY: Final = 6
BPF_MAP_TYPE_LRU_PERCPU_HASH: Final = 10
BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: Final = 21

# BPF_PROG_LOAD prog_flags.
BPF_F_STRICT_ALIGNMENT: Final = 1 << 0
BPF_F_ANY_ALIGNMENT: Final = 1 << 1
BPF_F_TEST_RND_HI32: Final = 1 << 2
BPF_F_TEST_STATE_FREQ: Final = 1 << 3
BPF_F_SLEEPABLE: Final = 1 << 4
BPF_F_XDP_HAS_FRAGS: Final = 1 << 5
BPF_F_XDP_DEV_BOUND_ONLY: Final = 1 << 6
BPF_F_TEST_REG_INVARIANTS: Final = 1 << 7

# libbpf-style names of the BPF_PROG_LOAD prog_flags.
PROG_FLAG_NAMES: Final[dict[str, int]] = {
    "strict_alignment": BPF_F_STRICT_ALIGNMENT, "any_alignment": BPF_F_ANY_ALIGNMENT,
    "test_rnd_hi32": BPF_F_TEST_RND_HI32, "test_state_freq": BPF_F_TEST_STATE_FREQ, "sleepable": BPF_F_SLEEPABLE,
    "xdp_has_frags": BPF_F_XDP_HAS_FRAGS, "xdp_dev_bound_only": BPF_F_XDP_DEV_BOUND_ONLY,
    "test_reg_invariants": BPF_F_TEST_REG_INVARIANTS,
}

# BPF_PROG_TEST_RUN flags.
BPF_F_TEST_RUN_ON_CPU: Final = 1 << 0
BPF_F_TEST_XDP_LIVE_FRAMES: Final = 1 << 1
BPF_F_TEST_SKB_CHECKSUM_COMPLETE: Final = 1 << 2

# Verifier log_level bits.
BPF_LOG_LEVEL1: Final = 1
BPF_LOG_LEVEL2: Final = 2
BPF_LOG_STATS: Final = 4
BPF_LOG_FIXED: Final = 8  # keep the log's head instead of rotating to its tail

# lddw src_reg values (ld_imm64 pseudo sources).
BPF_PSEUDO_MAP_FD: Final = 1
BPF_PSEUDO_MAP_VALUE: Final = 2
BPF_PSEUDO_BTF_ID: Final = 3
BPF_PSEUDO_FUNC: Final = 4
BPF_PSEUDO_MAP_IDX: Final = 5
BPF_PSEUDO_MAP_IDX_VALUE: Final = 6

# Per-CPU map types: user space reads/writes one 8-byte-aligned value per
# possible CPU rather than a single value.
PERCPU_MAP_TYPES: Final[frozenset[int]] = frozenset(
    {BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_PERCPU_HASH,
     BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}
)


def _lookup(table: tuple[str, ...], what: str, value: int | str) -> int:
    if isinstance(value, bool):  # bool is an int; True as a prog type is a bug
        raise KernelArgumentError(what, f"expected a name or number, got {value!r}")
    if isinstance(value, int):
        if value < 0 or value >= 1 << 32:
            raise KernelArgumentError(what, f"{value} is not a u32")
        return value  # numbers beyond the table are passed through for newer kernels
    key = value.strip().lower()
    for prefix in ("bpf_prog_type_", "bpf_map_type_", "bpf_"):
        if key.startswith(prefix) and key[len(prefix):] in table:
            key = key[len(prefix):]
            break
    try:
        return table.index(key)
    except ValueError:
        raise KernelArgumentError(what, f"unknown name {value!r}") from None


def _name(table: tuple[str, ...], number: int) -> str:
    return table[number] if 0 <= number < len(table) else f"unknown({number})"


def prog_type_number(prog_type: int | str) -> int:
    """``"xdp"`` / ``"BPF_PROG_TYPE_XDP"`` / ``6`` -> 6."""
    return _lookup(PROG_TYPE_NAMES, "prog_type", prog_type)


def prog_type_name(number: int) -> str:
    return _name(PROG_TYPE_NAMES, number)


def map_type_number(map_type: int | str) -> int:
    """``"hash"`` / ``"BPF_MAP_TYPE_HASH"`` / ``1`` -> 1."""
    return _lookup(MAP_TYPE_NAMES, "map_type", map_type)


def map_type_name(number: int) -> str:
    return _name(MAP_TYPE_NAMES, number)


def attach_type_number(attach_type: int | str) -> int:
    """``"cgroup_inet_ingress"`` / ``"BPF_CGROUP_INET_INGRESS"`` / ``0`` -> 0."""
    return _lookup(ATTACH_TYPE_NAMES, "expected_attach_type", attach_type)


def attach_type_name(number: int) -> str:
    return _name(ATTACH_TYPE_NAMES, number)
