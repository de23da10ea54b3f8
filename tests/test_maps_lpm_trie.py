"""lpm_trie: longest-prefix match, key handling and flags, checked by hand
(an IPv4 routing table) and against a brute-force matcher (hypothesis). The
kernel checks the Python API in test_maps_kernel.py."""

from __future__ import annotations

import errno
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.memory import MemoryMap, map_window
from ebpfvm.maps import (BPF_EXIST, BPF_F_NO_PREALLOC, BPF_NOEXIST, LpmTrieMap, MapDefinition, MapError,
                         create_map)
from ebpfvm.maps.lpm_trie import masked


def trie(data_size: int = 4, max_entries: int = 8) -> LpmTrieMap:
    bpf_map = create_map(MapDefinition("routes", "lpm_trie", 4 + data_size, 4, max_entries,
                                       flags=BPF_F_NO_PREALLOC))
    assert isinstance(bpf_map, LpmTrieMap)
    return bpf_map


def route(cidr: str) -> bytes:
    net = ipaddress.ip_network(cidr, strict=False)
    return LpmTrieMap.make_key(net.prefixlen, ipaddress.ip_address(cidr.split("/")[0]).packed)


def addr(ip: str) -> bytes:
    return LpmTrieMap.make_key(32, ipaddress.ip_address(ip).packed)


def errno_of(call: object) -> int:
    with pytest.raises(MapError) as info:
        call()  # type: ignore[operator]
    return info.value.errno


def test_masked_clears_bits_past_the_prefix() -> None:
    assert masked(b"\xff\xff", 0) == b"\0\0"
    assert masked(b"\xff\xff", 3) == b"\xe0\0"
    assert masked(b"\xff\xff", 8) == b"\xff\0"
    assert masked(b"\xff\xff", 13) == b"\xff\xf8"
    assert masked(b"\xff\xff", 16) == b"\xff\xff"


def test_routing_table_longest_prefix_wins() -> None:
    t = trie()
    t.update(route("0.0.0.0/0"), b"dflt")
    t.update(route("10.0.0.0/8"), b"ten.")
    t.update(route("10.1.0.0/16"), b"ten1")
    t.update(route("10.1.2.0/24"), b"t120")
    t.update(route("192.168.0.0/16"), b"home")
    assert t.lookup(addr("10.1.2.3")) == b"t120"
    assert t.lookup(addr("10.1.3.3")) == b"ten1"
    assert t.lookup(addr("10.200.0.1")) == b"ten."
    assert t.lookup(addr("192.168.77.1")) == b"home"
    assert t.lookup(addr("8.8.8.8")) == b"dflt"
    # A lookup key's own prefix length caps the match.
    assert t.lookup(LpmTrieMap.make_key(12, bytes([10, 1, 2, 3]))) == b"ten."
    t.delete(route("0.0.0.0/0"))
    assert t.lookup(addr("8.8.8.8")) is None
    assert len(t) == 4


def test_keys_keep_the_bits_past_the_prefix_as_written() -> None:
    t = trie()
    t.update(LpmTrieMap.make_key(8, bytes([10, 9, 9, 9])), b"aaaa")
    assert errno_of(lambda: t.update(LpmTrieMap.make_key(8, bytes([10, 1, 1, 1])), b"bbbb", BPF_NOEXIST)) \
        == errno.EEXIST  # the same /8
    t.update(LpmTrieMap.make_key(8, bytes([10, 1, 1, 1])), b"bbbb")
    assert t.keys() == [LpmTrieMap.make_key(8, bytes([10, 1, 1, 1]))]
    t.delete(LpmTrieMap.make_key(8, bytes([10, 0, 0, 0])))  # delete needs only the prefix to agree
    assert len(t) == 0


def test_flags_limits_and_errors() -> None:
    t = trie(max_entries=2)
    t.update(route("10.0.0.0/8"), b"aaaa")
    t.update(route("11.0.0.0/8"), b"bbbb")
    assert errno_of(lambda: t.update(route("12.0.0.0/8"), b"cccc")) == errno.ENOSPC
    assert errno_of(lambda: t.update(route("12.0.0.0/8"), b"cccc", BPF_EXIST)) == errno.ENOENT
    t.update(route("11.0.0.0/8"), b"BBBB", BPF_EXIST)  # replacing works when full
    assert errno_of(lambda: t.update(route("11.0.0.0/8"), b"cccc", 3)) == errno.EINVAL
    assert errno_of(lambda: t.update(LpmTrieMap.make_key(33, bytes(4)), b"cccc")) == errno.EINVAL
    assert errno_of(lambda: t.delete(LpmTrieMap.make_key(33, bytes(4)))) == errno.EINVAL
    assert errno_of(lambda: t.delete(route("10.0.0.0/9"))) == errno.ENOENT
    assert t.lookup(LpmTrieMap.make_key(33, bytes([10, 0, 0, 0]))) is None
    assert dict(t.items()) == {route("10.0.0.0/8"): b"aaaa", route("11.0.0.0/8"): b"BBBB"}


@pytest.mark.parametrize("key_size, flags", [(4, BPF_F_NO_PREALLOC), (4 + 257, BPF_F_NO_PREALLOC), (8, 0)])
def test_creation_checks(key_size: int, flags: int) -> None:
    assert errno_of(lambda: create_map(MapDefinition("t", "lpm_trie", key_size, 4, 4, flags=flags))) \
        == errno.EINVAL


def test_program_pointers_and_replacement() -> None:
    t = trie()
    memory = MemoryMap()
    t.bind(memory, map_window(1))
    t.update(route("10.0.0.0/8"), b"old!")
    old = t.lookup_address(addr("10.2.3.4"), cpu=0)
    assert memory.read_bytes(old, 4) == b"old!"
    assert t.update_elem(route("10.0.0.0/8"), b"new!", 0, cpu=0) == 0
    new = t.lookup_address(addr("10.2.3.4"), cpu=0)
    assert new != old and memory.read_bytes(new, 4) == b"new!"
    assert memory.read_bytes(old, 4) == b"old!"  # a new node, as the kernel allocates
    assert t.lookup_address(addr("11.0.0.0"), cpu=0) == 0


KEYS = st.builds(LpmTrieMap.make_key, st.integers(0, 16), st.binary(min_size=2, max_size=2))


@settings(max_examples=200)
@given(st.lists(st.tuples(KEYS, st.binary(min_size=4, max_size=4)), max_size=12), st.lists(KEYS, max_size=10))
def test_lookup_matches_brute_force(inserts: list[tuple[bytes, bytes]], queries: list[bytes]) -> None:
    t = trie(data_size=2, max_entries=64)
    for key, value in inserts:
        t.update(key, value)

    def bits(data: bytes) -> str:
        return "".join(f"{b:08b}" for b in data)

    stored = [(int.from_bytes(key[:4], "little"), bits(key[4:]), value) for key, value in t.items()]
    for query in queries:
        qlen, qbits = int.from_bytes(query[:4], "little"), bits(query[4:])
        matches = [(plen, value) for plen, kbits, value in stored if plen <= qlen and kbits[:plen] == qbits[:plen]]
        expected = max(matches)[1] if matches else None
        assert t.lookup(query) == expected
