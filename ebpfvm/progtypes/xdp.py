"""XDP programs: ``struct xdp_md`` and the XDP verdicts.

``xdp_md`` is six u32 fields. ``data``, ``data_end`` and ``data_meta`` are
rewritten by the kernel into 64-bit pointers into the frame (the 32-bit load
the C code compiles to yields the whole pointer); ``ingress_ifindex`` and
``rx_queue_index`` come from the receive queue, ``egress_ifindex`` only for
programs attached to a devmap (``xdp_is_valid_access`` in net/core/filter.c).
Every field is read whole (4 bytes) and none may be written.

The run mirrors the kernel's BPF_PROG_TEST_RUN (``bpf_prog_test_run_xdp``):
the frame is a 4096-byte page, the packet starts after 256 bytes of headroom
(XDP_PACKET_HEADROOM), the last 320 bytes are reserved for the
skb_shared_info, the receive queue is the loopback device's (ifindex 1, queue
0). A context input may put metadata in front of the packet: its ``data`` is
the metadata length, its ``data_end`` the length of metadata plus packet.
"""

from __future__ import annotations

import struct

from .base import (EXACT_32, SK_BASE_HELPERS, ContextInputError, ContextLayout, ContextSetup, CtxField,
                   FieldKind, PacketLayout, ProgType, check_ctx_input, helper_ids)

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
XDP_ACTIONS = {XDP_ABORTED: "XDP_ABORTED", XDP_DROP: "XDP_DROP", XDP_PASS: "XDP_PASS", XDP_TX: "XDP_TX",
               XDP_REDIRECT: "XDP_REDIRECT"}

XDP_PACKET_HEADROOM = 256
XDP_FRAME_SIZE = 4096  # the page the test run's frame lives in (rxq frag_size = PAGE_SIZE)
SKB_SHARED_INFO_SIZE = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86_64
XDP_FRAME_STRUCT_SIZE = 40  # sizeof(struct xdp_frame): stored at the frame start, so data may not move into it
XDP_META_MAX = 252  # metadata: a multiple of 4 that fits skb_shared_info.meta_len (u8)
LOOPBACK_IFINDEX = 1

XDP_PACKET = PacketLayout(headroom=XDP_PACKET_HEADROOM, tailroom=SKB_SHARED_INFO_SIZE, frame_size=XDP_FRAME_SIZE,
                          l2=True, direct=True,
                          max_len=XDP_FRAME_SIZE - XDP_PACKET_HEADROOM - SKB_SHARED_INFO_SIZE)

_U32 = struct.Struct("<I")
_XDP_MD = struct.Struct("<6I")

_FIELDS = (
    CtxField("data", 0, 4, EXACT_32, kind=FieldKind.PACKET),
    CtxField("data_end", 4, 4, EXACT_32, kind=FieldKind.PACKET_END),
    CtxField("data_meta", 8, 4, EXACT_32, kind=FieldKind.PACKET_META),
    CtxField("ingress_ifindex", 12, 4, EXACT_32),
    CtxField("rx_queue_index", 16, 4, EXACT_32),
)
EGRESS_IFINDEX = CtxField("egress_ifindex", 20, 4, EXACT_32)
XDP_MD = ContextLayout("xdp_md", 24, _FIELDS, hidden=(EGRESS_IFINDEX,))
XDP_MD_DEVMAP = ContextLayout("xdp_md", 24, _FIELDS + (EGRESS_IFINDEX,))

# xdp_func_proto, falling back to bpf_sk_base_func_proto.
XDP_HELPERS = SK_BASE_HELPERS | helper_ids((
    "perf_event_output", "get_smp_processor_id", "csum_diff", "xdp_adjust_head", "xdp_adjust_meta", "redirect",
    "redirect_map", "xdp_adjust_tail", "xdp_get_buff_len", "xdp_load_bytes", "xdp_store_bytes", "fib_lookup",
    "check_mtu", "sk_lookup_udp", "sk_lookup_tcp", "sk_release", "skc_lookup_tcp", "tcp_check_syncookie",
    "tcp_gen_syncookie", "tcp_raw_gen_syncookie_ipv4", "tcp_raw_gen_syncookie_ipv6",
    "tcp_raw_check_syncookie_ipv4", "tcp_raw_check_syncookie_ipv6",
))


def build_xdp_context(prog_type: ProgType, packet: bytes | None, ctx: bytes | None) -> ContextSetup:
    """The test run's xdp_buff for ``packet`` and an optional ``xdp_md`` input
    (bpf_prog_test_run_xdp and xdp_convert_md_to_buff)."""
    name = prog_type.name
    if packet is None:
        raise ContextInputError(name, "an XDP program needs a packet")
    given = ctx is not None
    data, data_end, data_meta, ingress, rx_queue, egress = _XDP_MD.unpack(check_ctx_input(name, ctx, 24))
    meta_len, linear = 0, len(packet)
    if given:
        if data_meta or data_end > len(packet) or data > data_end:
            raise ContextInputError(name, "xdp_md input needs data_meta 0 and data <= data_end <= packet length")
        if data % 4 or data > XDP_META_MAX or data > XDP_PACKET_HEADROOM - XDP_FRAME_STRUCT_SIZE:
            raise ContextInputError(name, f"metadata length (xdp_md.data) {data} is not a multiple of 4 up to "
                                          f"{XDP_META_MAX}")
        if egress:
            raise ContextInputError(name, "xdp_md.egress_ifindex must be 0 in a context input")
        if not ingress and rx_queue:
            raise ContextInputError(name, "xdp_md.rx_queue_index needs an ingress_ifindex")
        meta_len, linear = data, data_end
    if linear < len(packet) or linear - meta_len > XDP_PACKET.max_len:
        raise ContextInputError(name, f"a packet of {len(packet) - meta_len} bytes would need fragments "
                                      f"(multi-buffer XDP is not supported; at most {XDP_PACKET.max_len} bytes)")
    if linear - meta_len < XDP_PACKET.min_len:
        raise ContextInputError(name, f"the packet needs at least {XDP_PACKET.min_len} bytes (an Ethernet header)")
    # Without a device of its own the run uses loopback's receive queue 0.
    ingress = ingress or LOOPBACK_IFINDEX
    md = _XDP_MD.pack(meta_len, linear, 0, ingress, rx_queue, 0)
    return ContextSetup(ctx=md, packet=bytes(packet[meta_len:linear]), meta=bytes(packet[:meta_len]))


XDP = ProgType(
    name="xdp",
    context=XDP_MD,
    build_context=build_xdp_context,
    helpers=XDP_HELPERS,
    actions=XDP_ACTIONS,
    packet=XDP_PACKET,
    attach_layouts={"xdp_devmap": XDP_MD_DEVMAP},
)
