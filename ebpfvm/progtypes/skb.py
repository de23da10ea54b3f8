"""Program types whose context is ``struct __sk_buff``: socket filters, tc
classifiers and actions, cgroup skb programs.

Access rules (net/core/filter.c): ``bpf_skb_is_valid_access`` is common to
all of them -- an access must be aligned to its size; a u32 field may be read
narrower (1, 2 or 4 bytes) but written only whole; ``cb[]`` takes any size;
``data``/``data_end``/``data_meta`` and the IP addresses are read as whole
u32s; ``tstamp``, ``hwtstamp`` and ``sk`` are u64s; ``flow_keys`` and the
padding never. On top of that each type's ``*_is_valid_access`` hides some
fields and names the few it may write:

==============  =====================================================  ==========================================
type            hidden                                                 writable
==============  =====================================================  ==========================================
socket_filter   tc_classid, data, data_meta, data_end, family..local_   cb
                port, tstamp, wire_len, hwtstamp
sched_cls/act   family..local_port (tstamp_type readable as a u8)      mark, tc_index, priority, tc_classid, cb,
                                                                       tstamp, queue_mapping
cgroup_skb      tc_classid, data_meta, wire_len                        mark, priority, cb, tstamp
==============  =====================================================  ==========================================

Values mirror the kernel's BPF_PROG_TEST_RUN (``bpf_prog_test_run_skb``):
the packet arrives on the loopback device (ifindex 1), whose address and
broadcast address are all zeroes, so ``pkt_type`` is HOST for that
destination, MULTICAST for any group address (ff:ff:ff:ff:ff:ff included) and
OTHERHOST otherwise; ``protocol`` is what ``eth_type_trans`` finds. tc
programs see the Ethernet header, the others start at the network header
(``len`` excludes the 14 header bytes). A context input may set only
``mark``, ``priority``, ``ingress_ifindex``, ``ifindex``, ``cb``, ``tstamp``,
``wire_len``, ``gso_segs``, ``gso_size`` and ``hwtstamp``; only when one is
given does the run fill ``wire_len`` (with ``len`` by default). For cgroup
skb programs the socket fields describe a socket bound to the packet's
addresses (IPv4 or IPv6), as the test run's dummy socket does. ``sk`` reads
as NULL: there is no socket object to point to.
"""

from __future__ import annotations

from .base import (ANY_SIZE, EXACT_32, EXACT_64, NONE, SK_BASE_HELPERS, ContextInputError,
                   ContextLayout, ContextSetup, CtxField, FieldKind, PacketLayout, ProgType, check_ctx_input,
                   helper_ids)
from .xdp import LOOPBACK_IFINDEX, SKB_SHARED_INFO_SIZE

SK_BUFF_SIZE = 192
ETH_HLEN = 14

TC_ACTIONS = {-1: "TC_ACT_UNSPEC", 0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT", 3: "TC_ACT_PIPE",
              4: "TC_ACT_STOLEN", 5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT", 7: "TC_ACT_REDIRECT", 8: "TC_ACT_TRAP"}

# struct __sk_buff, with the reads and writes bpf_skb_is_valid_access allows
# (writes only where a type's own rule permits them, below).
_ALL_FIELDS = (
    CtxField("len", 0, 4), CtxField("pkt_type", 4, 4), CtxField("mark", 8, 4), CtxField("queue_mapping", 12, 4),
    CtxField("protocol", 16, 4), CtxField("vlan_present", 20, 4), CtxField("vlan_tci", 24, 4),
    CtxField("vlan_proto", 28, 4), CtxField("priority", 32, 4), CtxField("ingress_ifindex", 36, 4),
    CtxField("ifindex", 40, 4), CtxField("tc_index", 44, 4),
    CtxField("cb", 48, 20, ANY_SIZE),
    CtxField("hash", 68, 4), CtxField("tc_classid", 72, 4),
    CtxField("data", 76, 4, EXACT_32, kind=FieldKind.PACKET),
    CtxField("data_end", 80, 4, EXACT_32, kind=FieldKind.PACKET_END),
    CtxField("napi_id", 84, 4),
    CtxField("family", 88, 4), CtxField("remote_ip4", 92, 4, EXACT_32), CtxField("local_ip4", 96, 4, EXACT_32),
    CtxField("remote_ip6", 100, 16, EXACT_32), CtxField("local_ip6", 116, 16, EXACT_32),
    CtxField("remote_port", 132, 4), CtxField("local_port", 136, 4),
    CtxField("data_meta", 140, 4, EXACT_32, kind=FieldKind.PACKET_META),
    CtxField("tstamp", 152, 8, EXACT_64),
    CtxField("wire_len", 160, 4), CtxField("gso_segs", 164, 4),
    CtxField("sk", 168, 8, EXACT_64, kind=FieldKind.SOCKET),
    CtxField("gso_size", 176, 4),
    # tstamp_type (180, 1) is readable only by tc; 181..183 are padding.
    CtxField("hwtstamp", 184, 8, EXACT_64),
)
FLOW_KEYS = CtxField("flow_keys", 144, 8, NONE)  # never accessible through __sk_buff
_BY_NAME = {f.name: f for f in _ALL_FIELDS}
_SOCKET_FIELDS = ("family", "remote_ip4", "local_ip4", "remote_ip6", "local_ip6", "remote_port", "local_port")
TSTAMP_TYPE = CtxField("tstamp_type", 180, 1, frozenset({1}))


def _layout(hidden: tuple[str, ...], writable: tuple[str, ...], extra: tuple[CtxField, ...] = ()) -> ContextLayout:
    fields, invisible = [], [FLOW_KEYS]
    for f in _ALL_FIELDS:
        if f.name in hidden:
            invisible.append(f)
            continue
        if f.name in writable:
            # The common rule: whole u32 stores, any size into cb, u64 tstamp.
            f = f.writable(ANY_SIZE if f.name == "cb" else frozenset({f.size}))
        fields.append(f)
    if TSTAMP_TYPE not in extra:
        invisible.append(TSTAMP_TYPE)
    return ContextLayout("__sk_buff", SK_BUFF_SIZE, tuple(fields) + extra, tuple(invisible))


SOCKET_FILTER_SKB = _layout(
    hidden=("tc_classid", "data", "data_meta", "data_end", *_SOCKET_FIELDS, "tstamp", "wire_len", "hwtstamp"),
    writable=("cb",))
TC_SKB = _layout(
    hidden=_SOCKET_FIELDS,
    writable=("mark", "tc_index", "priority", "tc_classid", "cb", "tstamp", "queue_mapping"),
    extra=(TSTAMP_TYPE,))
CGROUP_SKB_CTX = _layout(
    hidden=("tc_classid", "data_meta", "wire_len"),
    writable=("mark", "priority", "cb", "tstamp"))

# Headroom of a test-run skb: NET_SKB_PAD (64 on x86_64) + NET_IP_ALIGN (0).
SKB_HEADROOM = 64
_SKB_PAGE = 4096
_L2 = PacketLayout(headroom=SKB_HEADROOM, tailroom=SKB_SHARED_INFO_SIZE, frame_size=_SKB_PAGE, l2=True,
                   direct=True, max_len=_SKB_PAGE - SKB_HEADROOM - SKB_SHARED_INFO_SIZE)
_L3_DIRECT = PacketLayout(headroom=SKB_HEADROOM + ETH_HLEN, tailroom=SKB_SHARED_INFO_SIZE, frame_size=_SKB_PAGE,
                          l2=False, direct=True, max_len=_L2.max_len)
_L3 = PacketLayout(headroom=SKB_HEADROOM + ETH_HLEN, tailroom=SKB_SHARED_INFO_SIZE, frame_size=_SKB_PAGE,
                   l2=False, direct=False, max_len=_L2.max_len)

# The fields a test run takes from a context input (convert___skb_to_skb).
_SETTABLE = ("mark", "priority", "ingress_ifindex", "ifindex", "cb", "tstamp", "wire_len", "gso_segs", "gso_size",
             "hwtstamp")
GSO_LEGACY_MAX_SIZE = 65536
GSO_MAX_SEGS = 65535

PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST = 0, 1, 2, 3
ETH_P_802_3, ETH_P_802_2, ETH_P_802_3_MIN = 0x0001, 0x0004, 0x0600
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10
_LOOPBACK_MAC = bytes(6)


def pkt_type(dest_mac: bytes) -> int:
    """eth_type_trans's classification of a destination on the loopback
    device, whose address and broadcast address are both all zeroes: so
    ff:ff:ff:ff:ff:ff is only multicast there, never PACKET_BROADCAST."""
    if dest_mac == _LOOPBACK_MAC:
        return PACKET_HOST
    if dest_mac[0] & 1:
        return PACKET_MULTICAST
    return PACKET_OTHERHOST


def eth_protocol(frame: bytes) -> int:
    """``skb->protocol`` as eth_type_trans sets it, as a host-order number:
    the EtherType, or 802.3/802.2 for a length field (raw IPX when the
    payload starts with 0xffff)."""
    proto = int.from_bytes(frame[12:14], "big")
    if proto >= ETH_P_802_3_MIN:
        return proto
    return ETH_P_802_3 if frame[14:16] == b"\xff\xff" else ETH_P_802_2


def _put(buf: bytearray, name: str, value: int | bytes) -> None:
    f = _BY_NAME[name]
    data = value if isinstance(value, bytes) else value.to_bytes(f.size, "little")
    buf[f.offset:f.offset + f.size] = data


def _get(buf: bytes, name: str) -> int:
    f = _BY_NAME[name]
    return int.from_bytes(buf[f.offset:f.offset + f.size], "little")


def _check_settable(name: str, ctx: bytes) -> None:
    allowed = bytearray(SK_BUFF_SIZE)
    for field in _SETTABLE:
        f = _BY_NAME[field]
        allowed[f.offset:f.end] = b"\1" * f.size
    for offset, byte in enumerate(ctx):
        if byte and not allowed[offset]:
            members = (*_ALL_FIELDS, FLOW_KEYS, TSTAMP_TYPE)
            owner = next((f.name for f in members if f.offset <= offset < f.end), f"padding at {offset}")
            raise ContextInputError(name, f"__sk_buff.{owner} cannot be set in a context input "
                                          f"(only {', '.join(_SETTABLE)})")


def _socket_fields(buf: bytearray, protocol: int, l3: bytes) -> None:
    """The test run's socket takes the packet's addresses: local = source,
    remote = destination (IPv4 needs a whole 20-byte header, IPv6 40)."""
    if protocol == ETH_P_IP:
        _put(buf, "family", AF_INET)
        if len(l3) >= 20:
            _put(buf, "local_ip4", l3[12:16])
            _put(buf, "remote_ip4", l3[16:20])
    elif protocol == ETH_P_IPV6:
        _put(buf, "family", AF_INET6)
        if len(l3) >= 40:
            _put(buf, "local_ip6", l3[8:24])
            _put(buf, "remote_ip6", l3[24:40])


def build_skb_context(prog_type: ProgType, packet: bytes | None, ctx: bytes | None) -> ContextSetup:
    """The test run's skb for an Ethernet frame ``packet`` and an optional
    ``__sk_buff`` input."""
    name = prog_type.name
    layout = prog_type.packet
    assert layout is not None
    if packet is None:
        raise ContextInputError(name, "a program on an skb needs a packet (an Ethernet frame)")
    if len(packet) < layout.min_len:
        raise ContextInputError(name, f"the packet needs at least {layout.min_len} bytes (an Ethernet header)")
    if len(packet) > layout.max_len:
        raise ContextInputError(name, f"a packet of {len(packet)} bytes is larger than the {layout.max_len} "
                                      f"a test run takes")
    given = check_ctx_input(name, ctx, SK_BUFF_SIZE)
    _check_settable(name, given)
    visible = packet if layout.l2 else packet[ETH_HLEN:]
    wire_len = _get(given, "wire_len")
    if wire_len and not len(visible) <= wire_len <= GSO_LEGACY_MAX_SIZE:
        raise ContextInputError(name, f"__sk_buff.wire_len {wire_len} is outside {len(visible)}.."
                                      f"{GSO_LEGACY_MAX_SIZE}")
    if _get(given, "gso_segs") > GSO_MAX_SEGS:
        raise ContextInputError(name, f"__sk_buff.gso_segs exceeds {GSO_MAX_SEGS}")

    buf = bytearray(given)  # the settable fields as given, everything else zero
    protocol = eth_protocol(packet)
    _put(buf, "len", len(visible))
    _put(buf, "pkt_type", pkt_type(packet[:6]))
    _put(buf, "protocol", protocol.to_bytes(2, "big") + b"\0\0")  # network order, as skb->protocol
    ifindex = _get(given, "ifindex")
    _put(buf, "ifindex", ifindex if ifindex > LOOPBACK_IFINDEX else LOOPBACK_IFINDEX)
    if ctx is not None:  # the test run converts a context only when one is given
        _put(buf, "wire_len", wire_len or len(visible))
    _socket_fields(buf, protocol, packet[ETH_HLEN:])
    hidden = b"" if layout.l2 else bytes(packet[:ETH_HLEN])
    return ContextSetup(ctx=bytes(buf), packet=bytes(visible), hidden_head=hidden)


# sk_filter_func_proto, falling back to bpf_sk_base_func_proto.
SOCKET_FILTER_HELPERS = SK_BASE_HELPERS | helper_ids((
    "skb_load_bytes", "skb_load_bytes_relative", "get_socket_cookie", "get_netns_cookie", "get_socket_uid",
    "perf_event_output",
))
# tc_cls_act_func_proto, falling back to bpf_sk_base_func_proto.
TC_HELPERS = SK_BASE_HELPERS | helper_ids((
    "skb_store_bytes", "skb_load_bytes", "skb_load_bytes_relative", "skb_pull_data", "csum_diff", "csum_update",
    "csum_level", "l3_csum_replace", "l4_csum_replace", "clone_redirect", "get_cgroup_classid", "skb_vlan_push",
    "skb_vlan_pop", "skb_change_proto", "skb_change_type", "skb_adjust_room", "skb_change_tail",
    "skb_change_head", "skb_get_tunnel_key", "skb_set_tunnel_key", "skb_get_tunnel_opt", "skb_set_tunnel_opt",
    "redirect", "redirect_neigh", "redirect_peer", "get_route_realm", "get_hash_recalc", "set_hash_invalid",
    "set_hash", "perf_event_output", "get_smp_processor_id", "skb_under_cgroup", "get_socket_cookie",
    "get_netns_cookie", "get_socket_uid", "fib_lookup", "check_mtu", "sk_fullsock", "sk_storage_get",
    "sk_storage_delete", "skb_get_xfrm_state", "skb_cgroup_classid", "skb_cgroup_id", "skb_ancestor_cgroup_id",
    "sk_lookup_tcp", "sk_lookup_udp", "sk_release", "tcp_sock", "get_listener_sock", "skc_lookup_tcp",
    "tcp_check_syncookie", "skb_ecn_set_ce", "tcp_gen_syncookie", "sk_assign", "skb_set_tstamp",
    "tcp_raw_gen_syncookie_ipv4", "tcp_raw_gen_syncookie_ipv6", "tcp_raw_check_syncookie_ipv4",
    "tcp_raw_check_syncookie_ipv6",
))
# cg_skb_func_proto: its own, then sk_filter's.
CGROUP_SKB_HELPERS = SOCKET_FILTER_HELPERS | helper_ids((
    "sk_fullsock", "sk_storage_get", "sk_storage_delete", "perf_event_output", "skb_cgroup_id",
    "skb_ancestor_cgroup_id", "sk_cgroup_id", "sk_ancestor_cgroup_id", "sk_lookup_tcp", "sk_lookup_udp",
    "sk_release", "skc_lookup_tcp", "tcp_sock", "get_listener_sock", "skb_ecn_set_ce",
))

SOCKET_FILTER = ProgType(
    name="socket_filter", context=SOCKET_FILTER_SKB, build_context=build_skb_context,
    helpers=SOCKET_FILTER_HELPERS, packet=_L3, aliases=("socket",))
SCHED_CLS = ProgType(
    name="sched_cls", context=TC_SKB, build_context=build_skb_context, helpers=TC_HELPERS, actions=TC_ACTIONS,
    packet=_L2, aliases=("tc", "classifier", "tcx"), signed_actions=True)
SCHED_ACT = ProgType(
    name="sched_act", context=TC_SKB, build_context=build_skb_context, helpers=TC_HELPERS, actions=TC_ACTIONS,
    packet=_L2, aliases=("action",), signed_actions=True)
# Ingress programs return 1 (pass) or 0 (drop); egress may add congestion
# notification (2, 3): the verifier's check_return_code.
CGROUP_SKB = ProgType(
    name="cgroup_skb", context=CGROUP_SKB_CTX, build_context=build_skb_context, helpers=CGROUP_SKB_HELPERS,
    return_range=(0, 1), packet=_L3_DIRECT, aliases=("cgroup/skb",))

CGROUP_SKB_EGRESS_RANGE = (0, 3)
