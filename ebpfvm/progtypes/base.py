"""What a program type is: its context layout and access rules, the kernel's
rewrite of context fields, the helpers it may call, its return values.

The kernel describes each program type with a ``bpf_verifier_ops``: an
``is_valid_access`` that decides which loads and stores of the context are
allowed (offset, size, read or write), a ``convert_ctx_access`` that rewrites
the allowed ones into loads from the real kernel structure, and a
``get_func_proto`` naming the helpers it may call. Here the same knowledge is
data: a ``ContextLayout`` of ``CtxField``s (offset, size, the load and store
sizes allowed) whose ``FieldKind`` says how a read is rewritten, a set of
helper ids and a return value range. The runtime checks every context access
of a running program against it; the verifier will check the same table
statically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, Mapping

from ..errors import ProgramFault, UserInputError
from ..helpers.ids import helper_id

# Sizes of loads and stores: a field may be read whole or, where the kernel
# allows "narrow" loads, in any smaller power of two at an aligned offset.
NARROW_32 = frozenset({1, 2, 4})
ANY_SIZE = frozenset({1, 2, 4, 8})
EXACT_32 = frozenset({4})
EXACT_64 = frozenset({8})
NONE: frozenset[int] = frozenset()


class FieldKind(Enum):
    """How the kernel rewrites a read of the field."""

    VALUE = "value"  # the bytes of the context buffer
    PACKET = "packet"  # u32 in the UAPI struct, a 64-bit pointer to the packet's first byte once loaded
    PACKET_END = "packet_end"  # likewise, one past the packet's last byte
    PACKET_META = "packet_meta"  # likewise, the first byte of the metadata in front of the packet
    SOCKET = "socket"  # a pointer to a socket the program may inspect; there is none here, so NULL


@dataclass(frozen=True)
class CtxField:
    """One field of a context struct. An access is allowed when it lies inside
    the field, its offset is a multiple of its size and the size is in
    ``read_sizes`` (loads) or ``write_sizes`` (stores; empty: read-only)."""

    name: str
    offset: int
    size: int
    read_sizes: frozenset[int] = NARROW_32
    write_sizes: frozenset[int] = NONE
    kind: FieldKind = FieldKind.VALUE

    @property
    def end(self) -> int:
        return self.offset + self.size

    def writable(self, sizes: frozenset[int]) -> "CtxField":
        """The same field, writable with stores of ``sizes``."""
        return CtxField(self.name, self.offset, self.size, self.read_sizes, sizes, self.kind)


class ContextAccessError(ProgramFault):
    """A load or store of the context that the program type does not allow
    (the kernel's verifier rejects it as ``invalid bpf_context access``)."""

    def __init__(self, pc: int, struct: str, offset: int, size: int, write: bool, field: str | None,
                 reason: str) -> None:
        self.struct = struct
        self.offset = offset
        self.size = size
        self.write = write
        self.field = field
        self.reason = reason
        what = "write" if write else "read"
        where = f"{what} of {field}" if field else what
        super().__init__(f"invalid access to {struct} at offset {offset} size {size} ({where}: {reason})", pc)


class ContextInputError(UserInputError):
    """A context or packet given for a run that the program type cannot take
    (the kernel's BPF_PROG_TEST_RUN refuses the same with EINVAL)."""

    def __init__(self, prog_type: str, message: str) -> None:
        self.prog_type = prog_type
        self.message = message
        super().__init__(f"{prog_type}: {message}")


@dataclass(frozen=True)
class ContextLayout:
    """A context struct as one program type sees it.

    ``fields`` are the members this program type may access, ``hidden`` the
    ones it may not (named when refused); offsets in neither are padding.
    ``size`` is the struct's size in bytes (for a tracepoint record, the
    largest the kernel accepts).
    """

    struct: str
    size: int
    fields: tuple[CtxField, ...]
    # Members of the struct this program type may not touch at all (named in faults).
    hidden: tuple[CtxField, ...] = ()

    def __post_init__(self) -> None:
        owner: dict[int, CtxField] = {}
        for f in self.fields + self.hidden:
            for offset in range(f.offset, f.end):
                if offset in owner:
                    raise ValueError(f"{self.struct}: {f.name} overlaps {owner[offset].name}")
                owner[offset] = f
        object.__setattr__(self, "_owner", owner)

    def field_at(self, offset: int) -> CtxField | None:
        """The member at ``offset``, accessible or not (None: padding or outside)."""
        return self._owner.get(offset)  # type: ignore[attr-defined]

    def field(self, name: str) -> CtxField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.struct} has no field {name!r}")

    def check(self, offset: int, size: int, write: bool, pc: int = -1) -> CtxField:
        """The field an access of ``size`` bytes at ``offset`` touches, or
        ``ContextAccessError`` when the program type does not allow it."""
        f = self.field_at(offset)
        if f is None:
            raise ContextAccessError(pc, self.struct, offset, size, write, None,
                                     "padding" if 0 <= offset < self.size
                                     else f"outside the {self.size}-byte struct")
        sizes = f.write_sizes if write else f.read_sizes
        if f in self.hidden:
            reason = "not accessible to this program type"
        elif not sizes:
            reason = "read-only for this program type" if write else "not readable"
        elif offset % size:
            reason = "offset is not a multiple of the size"
        elif size not in sizes:
            reason = f"size must be {_or_list(sorted(sizes))}"
        elif offset + size > f.end:
            reason = f"runs past the end of the field ({f.size} bytes)"
        else:
            return f
        raise ContextAccessError(pc, self.struct, offset, size, write, f.name, reason)


def _or_list(sizes: list[int]) -> str:
    text = [str(s) for s in sizes]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " or " + text[-1]


@dataclass(frozen=True)
class PacketLayout:
    """How a program type gets its packet, mirroring the kernel's test runs
    (net/bpf/test_run.c).

    The packet lives in a buffer of ``frame_size`` bytes: ``headroom`` bytes
    in front of it (where xdp_adjust_head/meta can grow into), and the last
    ``tailroom`` bytes reserved (the skb_shared_info the kernel keeps there),
    so data_end may grow up to ``frame_size - tailroom``. ``l2``: the program
    sees the Ethernet header (XDP, tc); otherwise its data starts at the
    network header and ``len`` excludes the 14 header bytes. ``direct``: the
    program may read data/data_end from its context. ``max_len``: the largest
    packet a run accepts, as the kernel's test run.
    """

    headroom: int
    tailroom: int
    frame_size: int
    l2: bool
    direct: bool
    min_len: int = 14  # ETH_HLEN: the kernel's test runs refuse less
    max_len: int = 0

    @property
    def hard_end(self) -> int:
        return self.frame_size - self.tailroom


@dataclass(frozen=True)
class ContextSetup:
    """What a program type makes of a run's packet and context input: the
    initial context buffer, the packet bytes the program sees (``None``: no
    packet), metadata in front of them, and bytes of the input in front of the
    visible packet that it cannot see (the Ethernet header of an L3 skb)."""

    ctx: bytes
    packet: bytes | None = None
    meta: bytes = b""
    hidden_head: bytes = b""


# A program type's test-run setup: (prog_type, packet, ctx input) -> ContextSetup.
ContextBuilder = Callable[["ProgType", "bytes | None", "bytes | None"], ContextSetup]


@dataclass(frozen=True)
class ProgType:
    """A program type (the kernel's name without ``BPF_PROG_TYPE_``, lower
    case) with what the runtime and the verifier need to know about it.

    ``aliases``: other names users and libbpf section names give it.
    ``helpers``: the ids the kernel's ``get_func_proto`` offers it (as root).
    ``return_range``: the values the verifier lets the main program return
    (``None``: any). ``actions``: names of return values (XDP and tc verdicts).
    ``attach_layouts``: another context layout for an expected attach type.
    """

    name: str
    context: ContextLayout
    build_context: ContextBuilder
    helpers: frozenset[int]
    return_range: tuple[int, int] | None = None
    actions: Mapping[int, str] = field(default_factory=dict)
    packet: PacketLayout | None = None
    aliases: tuple[str, ...] = ()
    attach_layouts: Mapping[str, ContextLayout] = field(default_factory=dict)
    signed_actions: bool = False  # tc verdicts are ints (TC_ACT_UNSPEC is -1)

    def layout_for(self, expected_attach_type: str | None) -> ContextLayout:
        return self.attach_layouts.get(expected_attach_type or "", self.context)

    def action_name(self, r0: int) -> str | None:
        """The verdict r0 means (its low 32 bits, as the kernel reads it), or
        None when the type has no named verdicts or r0 is none of them."""
        if not self.actions:
            return None
        value = r0 & 0xFFFF_FFFF
        if self.signed_actions and value >> 31:
            value -= 1 << 32
        return self.actions.get(value)

    def allows_helper(self, helper: int) -> bool:
        return helper in self.helpers


def helper_ids(names: Iterable[str]) -> frozenset[int]:
    """Helper ids from kernel names (with or without ``bpf_``); an unknown
    name is a bug in the table, so it raises."""
    ids = set()
    for name in names:
        found = helper_id(name)
        if found is None:
            raise ValueError(f"unknown helper name {name!r}")
        ids.add(found)
    return frozenset(ids)


# bpf_base_func_proto (kernel/bpf/helpers.c) as root: what every type gets.
BASE_HELPERS = helper_ids((
    "map_lookup_elem", "map_update_elem", "map_delete_elem", "map_push_elem", "map_pop_elem", "map_peek_elem",
    "map_lookup_percpu_elem", "get_prandom_u32", "get_smp_processor_id", "get_numa_node_id", "tail_call",
    "ktime_get_ns", "ktime_get_boot_ns", "ktime_get_tai_ns", "ringbuf_output", "ringbuf_reserve",
    "ringbuf_submit", "ringbuf_discard", "ringbuf_query", "strncmp", "strtol", "strtoul",
    "get_current_pid_tgid", "get_ns_current_pid_tgid", "get_current_uid_gid", "spin_lock", "spin_unlock",
    "jiffies64", "per_cpu_ptr", "this_cpu_ptr", "timer_init", "timer_set_callback", "timer_start",
    "timer_cancel", "kptr_xchg", "for_each_map_elem", "loop", "user_ringbuf_drain", "ringbuf_reserve_dynptr",
    "ringbuf_submit_dynptr", "ringbuf_discard_dynptr", "dynptr_from_mem", "dynptr_read", "dynptr_write",
    "dynptr_data", "cgrp_storage_get", "cgrp_storage_delete", "get_current_cgroup_id",
    "get_current_ancestor_cgroup_id", "current_task_under_cgroup", "get_cgroup_classid", "task_storage_get",
    "task_storage_delete", "trace_printk", "get_current_task", "get_current_task_btf", "get_current_comm",
    "probe_read_user", "probe_read_kernel", "probe_read_user_str", "probe_read_kernel_str", "copy_from_user",
    "copy_from_user_task", "snprintf_btf", "snprintf", "task_pt_regs", "trace_vprintk",
    "perf_event_read_value", "perf_event_read", "send_signal", "send_signal_thread", "get_task_stack",
    "get_branch_snapshot", "find_vma",
))

# bpf_sk_base_func_proto (net/core/filter.c): the base of the networking types.
SK_BASE_HELPERS = BASE_HELPERS | helper_ids((
    "skc_to_tcp6_sock", "skc_to_tcp_sock", "skc_to_tcp_timewait_sock", "skc_to_tcp_request_sock",
    "skc_to_udp6_sock", "skc_to_unix_sock", "skc_to_mptcp_sock", "ktime_get_coarse_ns",
))


def check_ctx_input(prog_type: str, ctx: bytes | None, size: int) -> bytes:
    """The kernel's bpf_ctx_init: a context input longer than the struct is
    accepted only when the extra bytes are zero; shorter is zero-padded."""
    if ctx is None:
        return bytes(size)
    if len(ctx) > size and any(ctx[size:]):
        raise ContextInputError(prog_type, f"context input of {len(ctx)} bytes has non-zero bytes past the "
                                           f"{size}-byte struct")
    return bytes(ctx[:size]).ljust(size, b"\0")
