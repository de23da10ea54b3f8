"""Packet helpers: xdp_adjust_head/meta/tail, skb_load_bytes, skb_store_bytes,
l3/l4_csum_replace, csum_diff, redirect, redirect_map.

Semantics follow net/core/filter.c as of Linux 6.18, for the buffers a
BPF_PROG_TEST_RUN builds (a linear packet, ``ip_summed`` CHECKSUM_NONE):

* offsets are u32 (``skb_*``) or int (``xdp_adjust_*``) as the C prototypes
  take them; an skb access must lie inside ``skb->len`` bytes from ``data``;
* bpf_skb_load_bytes zeroes the destination when it fails (-EFAULT);
* the checksum helpers update the 16-bit field in place with the kernel's
  incremental arithmetic (``ebpfvm.helpers.checksum``);
* the XDP adjusters keep the kernel's limits: data may not move into the
  ``struct xdp_frame`` at the start of the frame nor leave less than an
  Ethernet header, metadata is a multiple of 4 up to 255 bytes, the tail may
  grow up to the reserved tailroom (new bytes zeroed);
* redirect returns XDP_REDIRECT / TC_ACT_REDIRECT and records the target in
  the run (``ProgramRun.redirect``); bad flags give XDP_ABORTED / TC_ACT_SHOT.

They need the runtime's per-run state (``machine.run_state``: the packet and
the program type); in a bare interpreter run they fault with
``HelperUnavailable``.
"""

from __future__ import annotations

import errno
from typing import Any

from ..errors import ProgramFault
from . import checksum
from .prototype import ArgFlag, ArgKind, Prototype, RetKind
from .registry import HelperRegistry

BPF_SKB_STORE_BYTES = 9
BPF_L3_CSUM_REPLACE = 10
BPF_L4_CSUM_REPLACE = 11
BPF_REDIRECT = 23
BPF_SKB_LOAD_BYTES = 26
BPF_CSUM_DIFF = 28
BPF_XDP_ADJUST_HEAD = 44
BPF_REDIRECT_MAP = 51
BPF_XDP_ADJUST_META = 54
BPF_XDP_ADJUST_TAIL = 65

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
INT_MAX = 0x7FFF_FFFF
ETH_HLEN = 14

# Flags (include/uapi/linux/bpf.h).
BPF_F_RECOMPUTE_CSUM = 1 << 0
BPF_F_INVALIDATE_HASH = 1 << 1
BPF_F_HDR_FIELD_MASK = 0xF
BPF_F_PSEUDO_HDR = 1 << 4
BPF_F_MARK_MANGLED_0 = 1 << 5
BPF_F_MARK_ENFORCE = 1 << 6
BPF_F_IPV6 = 1 << 7
BPF_F_INGRESS = 1 << 0
BPF_F_BROADCAST = 1 << 3
BPF_F_EXCLUDE_INGRESS = 1 << 4
CSUM_MANGLED_0 = 0xFFFF

XDP_ABORTED, XDP_REDIRECT = 0, 4
XDP_ACTION_MASK = 0x3  # XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX: redirect_map's fallback verdicts
TC_ACT_SHOT, TC_ACT_REDIRECT = 2, 7
XDP_FRAME_STRUCT_SIZE = 40  # sizeof(struct xdp_frame), kept at the start of the frame
XDP_META_MAX = 255  # skb_shared_info.meta_len is a u8
ENOTSUPP = 524

_DEVMAPS = ("devmap", "devmap_hash")


class HelperUnavailable(ProgramFault):
    """A helper that needs what this run does not have (a packet, a runtime)."""

    def __init__(self, pc: int, helper: str, reason: str) -> None:
        self.helper = helper
        self.reason = reason
        super().__init__(f"{helper}: {reason}", pc)


def _neg(err: int) -> int:
    return -err & MASK64


def _s32(value: int) -> int:
    value &= MASK32
    return value - (1 << 32) if value >> 31 else value


def run_state(machine: Any, helper: str) -> Any:
    state = machine.run_state
    if state is None:
        raise HelperUnavailable(machine.pc, helper, "needs a program context; run the program with "
                                                    "ebpfvm.runtime.Runtime")
    return state


def packet_of(machine: Any, helper: str) -> Any:
    packet = run_state(machine, helper).packet
    if packet is None:
        raise HelperUnavailable(machine.pc, helper, "this run has no packet")
    return packet


def _refresh_ld_abs_view(machine: Any, packet: Any) -> None:
    """LD_ABS and perf_event_output read ``machine.packet``: keep it the live
    bytes from data on after the window moved."""
    machine.packet = packet.view() if packet.meta == packet.data else bytearray(packet.packet_bytes())


# -- skb data -------------------------------------------------------------------------------
def skb_load_bytes(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_skb_load_bytes(skb, u32 offset, void *to, u32 len)."""
    packet = packet_of(machine, "bpf_skb_load_bytes")
    offset, length = r2 & MASK32, r4 & MASK32
    if length:  # check the destination before making a buffer of its size
        machine.memory.locate(r3, length, True, machine.pc)
    if offset > INT_MAX or offset + length > len(packet):
        machine.memory.write_bytes(r3, bytes(length), machine.pc)
        return _neg(errno.EFAULT)
    start = packet.view_offset + offset
    machine.memory.write_bytes(r3, bytes(packet.view()[start:start + length]), machine.pc)
    return 0


def skb_store_bytes(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_skb_store_bytes(skb, u32 offset, const void *from, u32 len, u64 flags)."""
    packet = packet_of(machine, "bpf_skb_store_bytes")
    offset, length, flags = r2 & MASK32, r4 & MASK32, r5
    if flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH):
        return _neg(errno.EINVAL)
    if offset > INT_MAX or (offset + length) & MASK32 > len(packet):
        return _neg(errno.EFAULT)
    data = machine.memory.read_bytes(r3, length, machine.pc)
    start = packet.view_offset + offset
    packet.view()[start:start + length] = data
    # RECOMPUTE_CSUM only adjusts skb->csum of CHECKSUM_COMPLETE packets; a
    # test run's is CHECKSUM_NONE. INVALIDATE_HASH clears skb->hash, which is 0.
    return 0


def _csum_field(machine: Any, helper: str, offset: int) -> tuple[Any, int] | int:
    """The packet and the view index of the 16-bit checksum at ``offset``, or
    the error the kernel returns for it."""
    packet = packet_of(machine, helper)
    if offset > 0xFFFF or offset & 1:
        return _neg(errno.EFAULT)
    if offset + 2 > len(packet):  # bpf_try_make_writable: the field must be in the packet
        return _neg(errno.EFAULT)
    return packet, packet.view_offset + offset


def l3_csum_replace(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_l3_csum_replace(skb, u32 offset, u64 from, u64 to, u64 flags):
    the low 4 bits of flags are the field size (2, 4, or 0: ``to`` is a
    difference from bpf_csum_diff and ``from`` must be 0)."""
    flags = r5
    if flags & ~BPF_F_HDR_FIELD_MASK:
        return _neg(errno.EINVAL)
    found = _csum_field(machine, "bpf_l3_csum_replace", r2 & MASK32)
    if isinstance(found, int):
        return found
    packet, at = found
    view = packet.view()
    old = int.from_bytes(view[at:at + 2], "little")
    size = flags & BPF_F_HDR_FIELD_MASK
    if size == 0:
        if r3:
            return _neg(errno.EINVAL)
        new = checksum.csum_replace_by_diff(old, r4)
    elif size == 2:
        new = checksum.csum_replace2(old, r3, r4)
    elif size == 4:
        new = checksum.csum_replace4(old, r3, r4)
    else:
        return _neg(errno.EINVAL)
    view[at:at + 2] = new.to_bytes(2, "little")
    return 0


def l4_csum_replace(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_l4_csum_replace(skb, u32 offset, u64 from, u64 to, u64 flags):
    as l3_csum_replace, plus BPF_F_PSEUDO_HDR (the field is in the pseudo
    header; matters only for CHECKSUM_PARTIAL/COMPLETE packets),
    BPF_F_MARK_MANGLED_0 (leave a zero checksum alone and never write 0: UDP's
    "no checksum"), BPF_F_MARK_ENFORCE and BPF_F_IPV6."""
    flags = r5
    allowed = BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK | BPF_F_IPV6
    if flags & ~allowed:
        return _neg(errno.EINVAL)
    found = _csum_field(machine, "bpf_l4_csum_replace", r2 & MASK32)
    if isinstance(found, int):
        return found
    packet, at = found
    view = packet.view()
    old = int.from_bytes(view[at:at + 2], "little")
    mangled_zero = bool(flags & BPF_F_MARK_MANGLED_0)
    if mangled_zero and not flags & BPF_F_MARK_ENFORCE and old == 0:
        return 0
    size = flags & BPF_F_HDR_FIELD_MASK
    if size == 0:
        if r3:
            return _neg(errno.EINVAL)
        new = checksum.csum_replace_by_diff(old, r4)
    elif size in (2, 4):
        # inet_proto_csum_replace2 widens the 16-bit values and uses the 32-bit update.
        mask = 0xFFFF if size == 2 else MASK32
        new = checksum.csum_replace4(old, r3 & mask, r4 & mask)
    else:
        return _neg(errno.EINVAL)
    if mangled_zero and new == 0:
        new = CSUM_MANGLED_0
    view[at:at + 2] = new.to_bytes(2, "little")
    return 0


def csum_diff(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """s64 bpf_csum_diff(__be32 *from, u32 from_size, __be32 *to, u32 to_size,
    __wsum seed): see ``checksum.csum_diff``."""
    from_size, to_size = r2 & MASK32, r4 & MASK32
    removed = machine.memory.read_bytes(r1, from_size, machine.pc) if from_size else b""
    added = machine.memory.read_bytes(r3, to_size, machine.pc) if to_size else b""
    return checksum.csum_diff(removed, added, r5)


# -- XDP frame ------------------------------------------------------------------------------
def xdp_adjust_head(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_xdp_adjust_head(xdp_md, int delta): move data (and the
    metadata with it) by ``delta``."""
    packet = packet_of(machine, "bpf_xdp_adjust_head")
    delta = _s32(r2)
    metalen = packet.data - packet.meta
    data = packet.data + delta
    if data < XDP_FRAME_STRUCT_SIZE + metalen or data > packet.end - ETH_HLEN:
        return _neg(errno.EINVAL)
    packet.sync()
    if metalen:
        frame = packet.frame
        frame[packet.meta + delta:packet.meta + delta + metalen] = frame[packet.meta:packet.data]
    packet.set_marks(meta=packet.meta + delta, data=data)
    _refresh_ld_abs_view(machine, packet)
    return 0


def xdp_adjust_meta(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_xdp_adjust_meta(xdp_md, int delta): move data_meta."""
    packet = packet_of(machine, "bpf_xdp_adjust_meta")
    meta = packet.meta + _s32(r2)
    if meta < XDP_FRAME_STRUCT_SIZE or meta > packet.data:
        return _neg(errno.EINVAL)
    metalen = packet.data - meta
    if metalen % 4 or metalen > XDP_META_MAX:
        return _neg(errno.EACCES)
    packet.move(meta=meta)
    _refresh_ld_abs_view(machine, packet)
    return 0


def xdp_adjust_tail(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_xdp_adjust_tail(xdp_md, int delta): move data_end; grown bytes
    are zeroed."""
    packet = packet_of(machine, "bpf_xdp_adjust_tail")
    delta = _s32(r2)
    end = packet.end + delta
    if end > packet.hard_end or end < packet.data + ETH_HLEN:
        return _neg(errno.EINVAL)
    packet.sync()
    if delta > 0:
        packet.frame[packet.end:end] = bytes(delta)
    packet.set_marks(end=end)
    _refresh_ld_abs_view(machine, packet)
    return 0


# -- redirect ----------------------------------------------------------------------------------
def redirect(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_redirect(u32 ifindex, u64 flags): the XDP and the tc version."""
    state = run_state(machine, "bpf_redirect")
    ifindex, flags = r1 & MASK32, r2
    if state.prog_type_name == "xdp":
        if flags:
            return XDP_ABORTED
        state.set_redirect(ifindex)
        return XDP_REDIRECT
    if flags & ~BPF_F_INGRESS:
        return TC_ACT_SHOT
    state.set_redirect(ifindex, flags)
    return TC_ACT_REDIRECT


def redirect_map(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """long bpf_redirect_map(map, u64 key, u64 flags) (XDP): XDP_REDIRECT to
    the map's entry ``key`` (a u32), or the verdict in the low bits of flags
    when there is none."""
    state = run_state(machine, "bpf_redirect_map")
    bpf_map = machine.map_at(r1)
    flags = r3
    flag_mask = BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS if bpf_map.map_type in _DEVMAPS else 0
    if flags & ~(XDP_ACTION_MASK | flag_mask):
        return XDP_ABORTED
    index = r2 & MASK32
    found = bpf_map.lookup_address(index.to_bytes(4, "little"), machine.env.cpu_id)
    if not found and not flags & BPF_F_BROADCAST:
        state.clear_redirect()
        return flags & XDP_ACTION_MASK
    state.set_redirect(index, flags if flags & BPF_F_BROADCAST else 0, bpf_map.name)
    return XDP_REDIRECT


_CTX, _ANY = ArgKind.PTR_TO_CTX, ArgKind.ANYTHING
_N, _RO, _NULL_RO = ArgFlag.NONE, ArgFlag.RDONLY, ArgFlag.MAYBE_NULL | ArgFlag.RDONLY
_PROTOTYPES = {
    BPF_SKB_STORE_BYTES: Prototype(RetKind.INTEGER, (_CTX, _ANY, ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE, _ANY),
                                   arg_flags=(_N, _N, _RO, _N, _N)),
    BPF_L3_CSUM_REPLACE: Prototype(RetKind.INTEGER, (_CTX, _ANY, _ANY, _ANY, _ANY)),
    BPF_L4_CSUM_REPLACE: Prototype(RetKind.INTEGER, (_CTX, _ANY, _ANY, _ANY, _ANY)),
    BPF_REDIRECT: Prototype(RetKind.INTEGER, (_ANY, _ANY)),
    BPF_SKB_LOAD_BYTES: Prototype(RetKind.INTEGER, (_CTX, _ANY, ArgKind.PTR_TO_UNINIT_MEM, ArgKind.CONST_SIZE)),
    BPF_CSUM_DIFF: Prototype(RetKind.INTEGER, (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE_OR_ZERO, ArgKind.PTR_TO_MEM,
                                               ArgKind.CONST_SIZE_OR_ZERO, _ANY),
                             arg_flags=(_NULL_RO, _N, _NULL_RO, _N, _N)),
    BPF_XDP_ADJUST_HEAD: Prototype(RetKind.INTEGER, (_CTX, _ANY)),
    BPF_REDIRECT_MAP: Prototype(RetKind.INTEGER, (ArgKind.CONST_MAP_PTR, _ANY, _ANY)),
    BPF_XDP_ADJUST_META: Prototype(RetKind.INTEGER, (_CTX, _ANY)),
    BPF_XDP_ADJUST_TAIL: Prototype(RetKind.INTEGER, (_CTX, _ANY)),
}
_IMPLEMENTATIONS = {
    BPF_SKB_STORE_BYTES: skb_store_bytes, BPF_L3_CSUM_REPLACE: l3_csum_replace,
    BPF_L4_CSUM_REPLACE: l4_csum_replace, BPF_REDIRECT: redirect, BPF_SKB_LOAD_BYTES: skb_load_bytes,
    BPF_CSUM_DIFF: csum_diff, BPF_XDP_ADJUST_HEAD: xdp_adjust_head, BPF_REDIRECT_MAP: redirect_map,
    BPF_XDP_ADJUST_META: xdp_adjust_meta, BPF_XDP_ADJUST_TAIL: xdp_adjust_tail,
}


def register(registry: HelperRegistry) -> HelperRegistry:
    for helper, fn in _IMPLEMENTATIONS.items():
        registry.register(helper, fn, proto=_PROTOTYPES[helper])
    return registry
