"""Packets for the example programs and what a run of each must give.

One table, ``EXAMPLE_RUNS``, shared by the kernel test
(tests/test_examples_kernel.py, which checks every row against
BPF_PROG_TEST_RUN) and by the interpreter's tests: each row was worked out by
hand from the C source in examples/ (see examples/README.md) and then
confirmed by the kernel.  Packets are built here from first principles
(RFC 791/793/768 headers, RFC 1071 checksums), independently of the programs.

Maps in ``maps`` are compared by value for the keys listed (8-byte values
are little-endian u64 counters); keys not listed are not checked.  Note the
kernel's test run hands socket filters the packet *without* its Ethernet
header (``skb->len`` is the IP datagram's length), and tc/XDP programs the
whole frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX = 0, 1, 2, 3
TC_ACT_OK = 0
ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def addr(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def eth(ethertype: int, payload: bytes = b"") -> bytes:
    return bytes.fromhex("020000000002" "020000000001") + struct.pack("!H", ethertype) + payload


def ipv4(proto: int, src: str, dst: str, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, addr(src), addr(dst))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def _l4_checksum(proto: int, src: str, dst: str, segment: bytes) -> int:
    pseudo = addr(src) + addr(dst) + struct.pack("!BBH", 0, proto, len(segment))
    return checksum(pseudo + segment)


def tcp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """An Ethernet frame with an IPv4 TCP SYN, checksums correct."""
    segment = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 0x02, 65535, 0, 0) + payload
    segment = segment[:16] + struct.pack("!H", _l4_checksum(6, src, dst, segment)) + segment[18:]
    return eth(ETH_P_IP, ipv4(6, src, dst, segment))


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    segment = segment[:6] + struct.pack("!H", _l4_checksum(17, src, dst, segment) or 0xFFFF) + segment[8:]
    return eth(ETH_P_IP, ipv4(17, src, dst, segment))


def icmp(src: str, dst: str) -> bytes:
    return eth(ETH_P_IP, ipv4(1, src, dst, bytes(8)))


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def lpm_key(prefixlen: int, network: str) -> bytes:
    return struct.pack("<I4s", prefixlen, addr(network))


@dataclass(frozen=True)
class ExampleRun:
    """Run ``program`` of ``examples/<obj>.o`` once on ``packet`` after writing
    ``map_setup``; expect ``retval``, the listed map entries, and
    ``packet_out`` (None: the packet must come out unchanged)."""

    id: str
    obj: str
    program: str
    packet: bytes
    retval: int
    maps: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    map_setup: dict[str, dict[bytes, bytes | str]] = field(default_factory=dict)
    packet_out: bytes | None = None

    @property
    def path(self) -> Path:
        return EXAMPLES / f"{self.obj}.o"


def _verdicts(*, aborted: int | None = None, drop: int | None = None, passed: int | None = None,
              tx: int | None = None) -> dict[str, dict[bytes, bytes]]:
    """xdp_firewall's ``verdicts`` array: packets counted per XDP action."""
    counts = {XDP_ABORTED: aborted, XDP_DROP: drop, XDP_PASS: passed, XDP_TX: tx}
    return {"verdicts": {u32(action): u64(n) for action, n in counts.items() if n is not None}}


CLIENT, SERVICE, NEW_SERVICE = "192.168.1.10", "10.0.0.1", "10.0.0.2"

EXAMPLE_RUNS: tuple[ExampleRun, ...] = (
    # xdp_firewall: nothing blocked -> XDP_PASS, counted under verdicts[2].
    ExampleRun("firewall-pass", "xdp_firewall", "xdp_firewall", tcp(CLIENT, SERVICE, 12345, 80), XDP_PASS,
               _verdicts(aborted=0, drop=0, tx=0, passed=1)),
    # Source 10.1.2.3 is inside the blocked 10.0.0.0/8 -> XDP_DROP.
    ExampleRun("firewall-blocked-net", "xdp_firewall", "xdp_firewall", tcp("10.1.2.3", SERVICE, 12345, 80),
               XDP_DROP, _verdicts(drop=1, passed=0),
               map_setup={"blocked_nets": {lpm_key(8, "10.0.0.0"): u32(1)}}),
    # UDP to blocked port 53 -> XDP_DROP, and the port's counter goes 0 -> 1.
    ExampleRun("firewall-blocked-port", "xdp_firewall", "xdp_firewall", udp(CLIENT, SERVICE, 5353, 53, b"abcd"),
               XDP_DROP, {**_verdicts(drop=1), "blocked_ports": {struct.pack("<H", 53): u64(1)}},
               map_setup={"blocked_ports": {struct.pack("<H", 53): u64(0)}}),
    # A blocked port does not touch other ports.
    ExampleRun("firewall-other-port", "xdp_firewall", "xdp_firewall", tcp(CLIENT, SERVICE, 5353, 80),
               XDP_PASS, {**_verdicts(drop=0, passed=1), "blocked_ports": {struct.pack("<H", 53): u64(0)}},
               map_setup={"blocked_ports": {struct.pack("<H", 53): u64(0)}}),
    # ARP is not IPv4 -> XDP_PASS.
    ExampleRun("firewall-arp", "xdp_firewall", "xdp_firewall", eth(ETH_P_ARP, bytes(28)), XDP_PASS,
               _verdicts(passed=1)),
    # EtherType IPv4 but only 6 bytes after the Ethernet header -> XDP_DROP.
    ExampleRun("firewall-truncated", "xdp_firewall", "xdp_firewall", eth(ETH_P_IP, bytes(6)), XDP_DROP,
               _verdicts(drop=1)),

    # tc_rewrite: 10.0.0.1:80 -> 10.0.0.2:8080 with both checksums still right.
    ExampleRun("rewrite-match", "tc_rewrite", "tc_rewrite", tcp(CLIENT, SERVICE, 12345, 80), TC_ACT_OK,
               {"rewrites": {u32(0): u64(1)}}, packet_out=tcp(CLIENT, NEW_SERVICE, 12345, 8080)),
    ExampleRun("rewrite-other-port", "tc_rewrite", "tc_rewrite", tcp(CLIENT, SERVICE, 12345, 443), TC_ACT_OK,
               {"rewrites": {u32(0): u64(0)}}),

    # socket_filter: keep DNS (all of the 32-byte IP datagram), drop the rest.
    ExampleRun("dns-kept", "socket_filter", "dns_only", udp(CLIENT, SERVICE, 5353, 53, b"abcd"), 32,
               {"counts": {u32(0): u64(1), u32(1): u64(0)}}),
    ExampleRun("dns-tcp-dropped", "socket_filter", "dns_only", tcp(CLIENT, SERVICE, 5353, 80), 0,
               {"counts": {u32(0): u64(0), u32(1): u64(1)}}),
    ExampleRun("dns-arp-dropped", "socket_filter", "dns_only", eth(ETH_P_ARP, bytes(28)), 0,
               {"counts": {u32(0): u64(0), u32(1): u64(1)}}),

    # global_data: skb->len 46 -> clamp(46 * 3 + 7, 1000) = 145; runs 100 -> 101.
    ExampleRun("globals-small", "global_data", "score_packet", eth(ETH_P_IP, bytes(46)), 145,
               {".rodata": {u32(0): u32(3) + u32(7)}, ".data": {u32(0): u64(101)},
                ".bss": {u32(0): u64(46) + u32(145)}}),
    # skb->len 386 -> 386 * 3 + 7 = 1165, clamped to 1000.
    ExampleRun("globals-clamped", "global_data", "score_packet", eth(ETH_P_IP, bytes(386)), 1000,
               {".data": {u32(0): u64(101)}, ".bss": {u32(0): u64(386) + u32(1000)}}),

    # loop_sum: 0+1+4+...+81 = 285 > 250 stops the loop after 10 callbacks.
    ExampleRun("loop", "loop_sum", "sum_squares", eth(ETH_P_IP, bytes(46)), 285,
               {"result": {u32(0): u64(285), u32(1): u64(10)}}),

    # tail_calls: hits[3] counts the dispatcher, hits[0]/[1] the handlers.
    ExampleRun("tail-ipv4", "tail_calls", "dispatch", eth(ETH_P_IP, bytes(46)), XDP_DROP,
               {"hits": {u32(0): u64(1), u32(1): u64(0), u32(2): u64(0), u32(3): u64(1)}}),
    ExampleRun("tail-ipv6", "tail_calls", "dispatch", eth(ETH_P_IPV6, bytes(46)), XDP_TX,
               {"hits": {u32(0): u64(0), u32(1): u64(1), u32(2): u64(0), u32(3): u64(1)}}),
    ExampleRun("tail-arp-empty-slot", "tail_calls", "dispatch", eth(ETH_P_ARP, bytes(46)), XDP_PASS,
               {"hits": {u32(0): u64(0), u32(1): u64(0), u32(2): u64(0), u32(3): u64(1)}}),
    ExampleRun("tail-handler-direct", "tail_calls", "handle_ipv4", eth(ETH_P_ARP, bytes(46)), XDP_DROP,
               {"hits": {u32(0): u64(1), u32(3): u64(0)}}),

    # map_in_map: TCP counts in tcp_counts (slot 0), UDP in udp_counts (slot 1).
    ExampleRun("mim-tcp", "map_in_map", "count_by_protocol", tcp(CLIENT, SERVICE, 12345, 80), XDP_PASS,
               {"tcp_counts": {u32(0): u64(1)}, "udp_counts": {u32(0): u64(0)}}),
    ExampleRun("mim-udp", "map_in_map", "count_by_protocol", udp(CLIENT, SERVICE, 12345, 80), XDP_PASS,
               {"tcp_counts": {u32(0): u64(0)}, "udp_counts": {u32(0): u64(1)}}),
    # ICMP maps to slot 2, which is empty -> XDP_DROP, nothing counted.
    ExampleRun("mim-icmp-empty-slot", "map_in_map", "count_by_protocol", icmp(CLIENT, SERVICE), XDP_DROP,
               {"tcp_counts": {u32(0): u64(0)}, "udp_counts": {u32(0): u64(0)}}),
    # With by_proto[6] = tcp_counts the same counter also gets +100.
    ExampleRun("mim-hash-of-maps", "map_in_map", "count_by_protocol", tcp(CLIENT, SERVICE, 12345, 80), XDP_PASS,
               {"tcp_counts": {u32(0): u64(101)}}, map_setup={"by_proto": {u32(6): "tcp_counts"}}),
)


def example_runtime(case: ExampleRun):  # type: ignore[no-untyped-def]
    """A runtime for ``case``'s object with its ``map_setup`` written."""
    from ebpfvm.elf import load_object
    from ebpfvm.runtime import Runtime
    runtime = Runtime.for_object(load_object(str(case.path)))
    for name, entries in case.map_setup.items():
        for key, value in entries.items():
            runtime.maps[name].update(key, runtime.maps[value] if isinstance(value, str) else value)
    return runtime
