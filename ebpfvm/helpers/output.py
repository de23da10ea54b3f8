"""Output helpers that hand data to user space: ringbuf_output, ringbuf_reserve,
ringbuf_submit, ringbuf_discard, ringbuf_query and perf_event_output.

The maps (``ebpfvm.maps.ringbuf``, ``ebpfvm.maps.perf_event_array``) hold the
kernel's semantics and capture what user space would receive; these helpers
read the program's arguments. A map of the wrong type, or a submit of a
pointer that is not a record being written, is something the kernel's
verifier refuses; here it raises ``MapFault``.

``perf_event_output``'s flags may carry a context length (BPF_F_CTXLEN_MASK)
only in programs whose context is a packet (the kernel's skb and xdp
variants of the helper): that many bytes of the packet (``machine.packet``)
are appended to the sample, -EFAULT if the packet is shorter.
"""

from __future__ import annotations

import errno
from typing import Any

from ..maps.errors import MapFault
from ..maps.flags import BPF_F_CTXLEN_MASK, BPF_F_CURRENT_CPU, BPF_F_INDEX_MASK
from ..maps.perf_event_array import PerfEventArrayMap
from ..maps.ringbuf import RingBufMap
from .prototype import ArgFlag, ArgKind, Prototype, RetKind
from .registry import HelperRegistry

BPF_PERF_EVENT_OUTPUT = 25
BPF_RINGBUF_OUTPUT = 130
BPF_RINGBUF_RESERVE = 131
BPF_RINGBUF_SUBMIT = 132
BPF_RINGBUF_DISCARD = 133
BPF_RINGBUF_QUERY = 134

MASK64 = (1 << 64) - 1

# Program types whose perf_event_output is bpf_skb_event_output or
# bpf_xdp_event_output (net/core/filter.c), which append packet bytes.
PACKET_PROG_TYPES = frozenset({
    "socket_filter", "sched_cls", "sched_act", "cgroup_skb", "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local",
    "sk_skb", "xdp",
})

_N, _RO = ArgFlag.NONE, ArgFlag.RDONLY
_PERF_EVENT_OUTPUT = Prototype(
    RetKind.INTEGER,
    (ArgKind.PTR_TO_CTX, ArgKind.CONST_MAP_PTR, ArgKind.ANYTHING, ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE_OR_ZERO),
    gpl_only=True, arg_flags=(_N, _N, _N, _RO, _N))
_RINGBUF_OUTPUT = Prototype(
    RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE_OR_ZERO, ArgKind.ANYTHING),
    arg_flags=(_N, _RO, _N, _N))
_RINGBUF_RESERVE = Prototype(
    RetKind.PTR_TO_ALLOC_MEM_OR_NULL, (ArgKind.CONST_MAP_PTR, ArgKind.CONST_ALLOC_SIZE_OR_ZERO, ArgKind.ANYTHING))
_RINGBUF_COMMIT = Prototype(RetKind.VOID, (ArgKind.PTR_TO_ALLOC_MEM, ArgKind.ANYTHING),
                            arg_flags=(ArgFlag.RELEASE, _N))
_RINGBUF_QUERY = Prototype(RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, ArgKind.ANYTHING))


def _ringbuf(machine: Any, handle: int) -> RingBufMap:
    found = machine.map_at(handle)
    if not isinstance(found, RingBufMap):
        raise MapFault(machine.pc, f"map {found.name!r} is a {found.map_type}, not a ringbuf")
    return found


def ringbuf_output(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_ringbuf_output(ringbuf, data, size, flags)."""
    ring = _ringbuf(machine, r1)
    data = machine.memory.read_bytes(r2, r3, machine.pc)
    return ring.output(data, r4) & MASK64


def ringbuf_reserve(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """void *bpf_ringbuf_reserve(ringbuf, size, flags): NULL for any flags."""
    ring = _ringbuf(machine, r1)
    if r3:
        return 0
    return ring.reserve(r2)


def _commit(machine: Any, address: int, flags: int, discard: bool) -> int:
    for candidate in machine.maps.values():
        if isinstance(candidate, RingBufMap) and candidate.owns(address):
            done = candidate.discard(address, flags) if discard else candidate.submit(address, flags)
            if done:
                return 0
            break
    what = "discard" if discard else "submit"
    raise MapFault(machine.pc, f"ringbuf {what} of {address:#x}, which is not a ringbuf record being written")


def ringbuf_submit(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """void bpf_ringbuf_submit(data, flags)."""
    return _commit(machine, r1, r2, discard=False)


def ringbuf_discard(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """void bpf_ringbuf_discard(data, flags)."""
    return _commit(machine, r1, r2, discard=True)


def ringbuf_query(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """u64 bpf_ringbuf_query(ringbuf, flags)."""
    return _ringbuf(machine, r1).query(r2) & MASK64


def perf_event_output(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_perf_event_output(ctx, map, flags, data, size)."""
    events = machine.map_at(r2)
    if not isinstance(events, PerfEventArrayMap):
        raise MapFault(machine.pc, f"map {events.name!r} is a {events.map_type}, not a perf_event_array")
    with_packet = getattr(machine.program, "prog_type", None) in PACKET_PROG_TYPES
    allowed = BPF_F_INDEX_MASK | (BPF_F_CTXLEN_MASK if with_packet else 0)
    if r3 & ~allowed:
        return -errno.EINVAL & MASK64
    data = machine.memory.read_bytes(r4, r5, machine.pc)
    ctx_len = (r3 & BPF_F_CTXLEN_MASK) >> 32
    if ctx_len:
        packet = machine.packet
        if ctx_len > len(packet):
            return -errno.EFAULT & MASK64
        data += bytes(packet[:ctx_len])
    cpu = machine.env.cpu_id
    index = r3 & BPF_F_INDEX_MASK
    if index == BPF_F_CURRENT_CPU:
        index = cpu
    return events.output(index, data, cpu=cpu) & MASK64


def register(registry: HelperRegistry) -> HelperRegistry:
    registry.register(BPF_PERF_EVENT_OUTPUT, perf_event_output, proto=_PERF_EVENT_OUTPUT)
    registry.register(BPF_RINGBUF_OUTPUT, ringbuf_output, proto=_RINGBUF_OUTPUT)
    registry.register(BPF_RINGBUF_RESERVE, ringbuf_reserve, proto=_RINGBUF_RESERVE)
    registry.register(BPF_RINGBUF_SUBMIT, ringbuf_submit, proto=_RINGBUF_COMMIT)
    registry.register(BPF_RINGBUF_DISCARD, ringbuf_discard, proto=_RINGBUF_COMMIT)
    registry.register(BPF_RINGBUF_QUERY, ringbuf_query, proto=_RINGBUF_QUERY)
    return registry
