"""How each program type turns a run's packet and context input into the
context the program sees: the kernel's BPF_PROG_TEST_RUN defaults
(net/bpf/test_run.c), worked out by hand and confirmed against the live
kernel in test_runtime_kernel.py."""

from __future__ import annotations

import struct

import pytest

from ebpfvm.progtypes import ContextInputError, get_prog_type

from runtime_support import frame, tcp, udp

SKB = struct.Struct("<" + "I" * 48)  # __sk_buff as u32 words


def skb_fields(type_name: str, packet: bytes, ctx: bytes | None = None) -> dict[str, int]:
    ptype = get_prog_type(type_name)
    words = SKB.unpack(ptype.build_context(ptype, packet, ctx).ctx)
    names = {"len": 0, "pkt_type": 1, "mark": 2, "queue_mapping": 3, "protocol": 4, "priority": 8,
             "ingress_ifindex": 9, "ifindex": 10, "cb0": 12, "cb4": 16, "hash": 17, "family": 22,
             "remote_ip4": 23, "local_ip4": 24, "remote_ip6_0": 25, "local_ip6_3": 32, "wire_len": 40,
             "gso_segs": 41, "gso_size": 44}
    return {name: words[i] for name, i in names.items()}


def test_socket_filter_sees_the_packet_from_the_network_header() -> None:
    packet = udp("192.168.1.10", "10.0.0.1", 5353, 53, b"abcd")
    setup = get_prog_type("socket_filter").build_context(get_prog_type("socket_filter"), packet, None)
    assert setup.packet == packet[14:]
    assert setup.hidden_head == packet[:14]
    fields = skb_fields("socket_filter", packet)
    assert fields["len"] == len(packet) - 14 == 32
    assert fields["protocol"] == 0x0008  # htons(ETH_P_IP) read as a host u32
    assert fields["ifindex"] == 1  # loopback
    assert fields["pkt_type"] == 3  # destination 02:00:00:00:00:02 is another host
    assert fields["wire_len"] == 0  # filled only when a context is given


def test_tc_sees_the_whole_frame() -> None:
    packet = tcp("192.168.1.10", "10.0.0.1", 1, 80)
    setup = get_prog_type("tc").build_context(get_prog_type("tc"), packet, None)
    assert setup.packet == packet and setup.hidden_head == b""
    assert skb_fields("tc", packet)["len"] == len(packet)


@pytest.mark.parametrize("dest,expected", [
    (bytes(6), 0),                      # the loopback device's own address: PACKET_HOST
    (b"\xff" * 6, 2),                   # loopback's broadcast address is all zeroes: only multicast
    (bytes.fromhex("01005e000001"), 2),  # PACKET_MULTICAST
    (bytes.fromhex("020000000009"), 3),  # PACKET_OTHERHOST
])
def test_pkt_type_on_loopback(dest: bytes, expected: int) -> None:
    assert skb_fields("socket_filter", frame(dest=dest))["pkt_type"] == expected


@pytest.mark.parametrize("ethertype,payload_start,protocol", [
    (0x86DD, b"\x60\x00", 0xDD86),
    (0x0806, b"\x00\x01", 0x0608),
    (0x0020, b"\xff\xff", 0x0100),  # a length field, raw IPX: ETH_P_802_3
    (0x0020, b"\xaa\xaa", 0x0400),  # a length field, LLC: ETH_P_802_2
])
def test_protocol_as_eth_type_trans_finds_it(ethertype: int, payload_start: bytes, protocol: int) -> None:
    packet = bytearray(frame(ethertype=ethertype))
    packet[14:16] = payload_start
    assert skb_fields("socket_filter", bytes(packet))["protocol"] == protocol


def test_context_input_sets_the_allowed_fields() -> None:
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 8, 7)  # mark
    struct.pack_into("<I", ctx, 32, 5)  # priority
    struct.pack_into("<I", ctx, 36, 3)  # ingress_ifindex
    struct.pack_into("<I", ctx, 40, 9)  # ifindex
    struct.pack_into("<5I", ctx, 48, 1, 2, 3, 4, 5)  # cb
    struct.pack_into("<I", ctx, 164, 2)  # gso_segs
    fields = skb_fields("tc", frame(), bytes(ctx))
    assert (fields["mark"], fields["priority"], fields["ingress_ifindex"], fields["ifindex"]) == (7, 5, 3, 9)
    assert (fields["cb0"], fields["cb4"], fields["gso_segs"]) == (1, 5, 2)
    assert fields["wire_len"] == 64  # a context was given: wire_len defaults to skb->len


def test_context_input_ifindex_0_or_1_is_loopback_and_short_input_is_padded() -> None:
    assert skb_fields("tc", frame(), bytes(8))["ifindex"] == 1
    assert skb_fields("tc", frame(), struct.pack("<11I", *[0] * 10, 1))["ifindex"] == 1


@pytest.mark.parametrize("offset,field", [(0, "len"), (16, "protocol"), (44, "tc_index"), (68, "hash"),
                                          (76, "data"), (180, "tstamp_type")])
def test_context_input_refuses_other_fields(offset: int, field: str) -> None:
    ctx = bytearray(192)
    ctx[offset] = 1
    with pytest.raises(ContextInputError, match=rf"__sk_buff\.{field} cannot be set"):
        skb_fields("tc", frame(), bytes(ctx))


def test_context_input_wire_len_and_size_limits() -> None:
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 160, 10)  # below skb->len
    with pytest.raises(ContextInputError, match="wire_len 10"):
        skb_fields("tc", frame(), bytes(ctx))
    struct.pack_into("<I", ctx, 160, 100)
    assert skb_fields("tc", frame(), bytes(ctx))["wire_len"] == 100
    assert skb_fields("tc", frame(), bytes(ctx) + bytes(8))["wire_len"] == 100  # zero tail accepted
    with pytest.raises(ContextInputError, match="non-zero bytes past"):
        skb_fields("tc", frame(), bytes(ctx) + b"\1")


def test_packet_size_limits() -> None:
    with pytest.raises(ContextInputError, match="at least 14 bytes"):
        skb_fields("tc", bytes(13))
    with pytest.raises(ContextInputError, match="needs a packet"):
        skb_fields("socket_filter", None)  # type: ignore[arg-type]
    ptype = get_prog_type("tc")
    ptype.build_context(ptype, frame(ptype.packet.max_len), None)
    with pytest.raises(ContextInputError, match="larger than"):
        ptype.build_context(ptype, frame(ptype.packet.max_len + 1), None)


def test_cgroup_skb_socket_fields_follow_the_packet() -> None:
    v4 = skb_fields("cgroup_skb", tcp("192.168.1.10", "10.0.0.1", 1, 80))
    assert v4["family"] == 2
    assert v4["local_ip4"] == int.from_bytes(bytes([192, 168, 1, 10]), "little")
    assert v4["remote_ip4"] == int.from_bytes(bytes([10, 0, 0, 1]), "little")
    packet = bytearray(frame(80, ethertype=0x86DD))
    v6 = skb_fields("cgroup_skb", bytes(packet))
    assert v6["family"] == 10
    assert v6["local_ip6_3"] == int.from_bytes(packet[14 + 20:14 + 24], "little")  # saddr[3]
    assert v6["remote_ip6_0"] == int.from_bytes(packet[14 + 24:14 + 28], "little")  # daddr[0]
    assert skb_fields("cgroup_skb", frame(ethertype=0x0806))["family"] == 0


# -- xdp ---------------------------------------------------------------------------------------
def xdp_setup(packet: bytes, ctx: bytes | None = None):  # type: ignore[no-untyped-def]
    ptype = get_prog_type("xdp")
    return ptype.build_context(ptype, packet, ctx)


def test_xdp_defaults_to_loopback_queue_0() -> None:
    setup = xdp_setup(frame(60))
    data, data_end, data_meta, ingress, queue, egress = struct.unpack("<6I", setup.ctx)
    assert (data, data_end, data_meta, ingress, queue, egress) == (0, 60, 0, 1, 0, 0)
    assert setup.packet == frame(60) and setup.meta == b""


def test_xdp_context_input_carves_metadata() -> None:
    packet = bytes(range(8)) + frame(60)
    setup = xdp_setup(packet, struct.pack("<6I", 8, 68, 0, 0, 0, 0))
    assert setup.meta == bytes(range(8))
    assert setup.packet == frame(60)
    assert struct.unpack("<6I", setup.ctx)[3] == 1  # ingress_ifindex 0: the loopback queue


@pytest.mark.parametrize("ctx,message", [
    (struct.pack("<6I", 0, 64, 4, 0, 0, 0), "data_meta 0"),
    (struct.pack("<6I", 0, 65, 0, 0, 0, 0), "data_end <= packet length"),
    (struct.pack("<6I", 6, 64, 0, 0, 0, 0), "multiple of 4"),
    (struct.pack("<6I", 0, 64, 0, 0, 0, 2), "egress_ifindex must be 0"),
    (struct.pack("<6I", 0, 64, 0, 0, 1, 0), "needs an ingress_ifindex"),
    (struct.pack("<6I", 0, 40, 0, 0, 0, 0), "fragments"),
])
def test_xdp_context_input_errors(ctx: bytes, message: str) -> None:
    with pytest.raises(ContextInputError, match=message):
        xdp_setup(frame(64), ctx)


def test_xdp_packet_limits() -> None:
    with pytest.raises(ContextInputError, match="at least 14"):
        xdp_setup(bytes(13))
    xdp_setup(frame(3520))
    with pytest.raises(ContextInputError, match="fragments"):
        xdp_setup(frame(3521))


def test_tracing_contexts_are_padded_buffers() -> None:
    ptype = get_prog_type("kprobe")
    assert ptype.build_context(ptype, None, b"\1\2").ctx == b"\1\2" + bytes(166)
    raw = get_prog_type("raw_tp")
    assert raw.build_context(raw, None, None).ctx == bytes(96)
    with pytest.raises(ContextInputError, match="raw_tracepoint: takes no packet"):
        raw.build_context(raw, frame(), None)
