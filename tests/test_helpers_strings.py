"""bpf_strncmp(s1, s1_sz, s2): the kernel's strncmp, returning -1, 0 or 1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpfvm import assemble, run
from ebpfvm.errors import MemoryFault
from ebpfvm.helpers import ArgFlag, ArgKind, default_registry
from ebpfvm.helpers.strings import NotAConstString, compare

S2_AT = 32


def strncmp(s1: bytes, s1_sz: int, s2: bytes, *, terminate: bool = True) -> int:
    """bpf_strncmp with s1 at the start of the input memory and s2 (NUL added
    unless ``terminate`` is false) at offset 32; r0 as a signed number."""
    assert len(s1) <= S2_AT
    mem = s1.ljust(S2_AT, b"\xee") + s2 + (b"\0" if terminate else b"")
    program = assemble(f"mov %r2, {s1_sz}\nmov %r3, %r1\nadd %r3, {S2_AT}\ncall bpf_strncmp\nexit")
    r0 = run(program, mem).r0
    return r0 - (1 << 64) if r0 >> 63 else r0


@pytest.mark.parametrize("s1, size, s2, expected", [
    (b"abc", 3, b"abc", 0),
    (b"abc", 3, b"abd", -1),
    (b"b", 1, b"a", 1),
    (b"abc", 3, b"abcd", 0),        # only s1_sz bytes are compared
    (b"abcd", 4, b"abc", 1),        # 'd' against s2's NUL
    (b"ab\0x", 4, b"ab", 0),        # a NUL in s1 ends the comparison
    (b"ab\0x", 4, b"abc", -1),
    (b"\x80", 1, b"a", 1),          # bytes compare unsigned
    (b"a", 1, b"\xff", -1),
    (b"zzz", 0, b"a", 0),           # nothing to compare
    (b"hello world", 11, b"hello", 1),
    (b"A", 1, b"z", -1),            # not the difference of the bytes: just its sign
])
def test_strncmp(s1: bytes, size: int, s2: bytes, expected: int) -> None:
    assert strncmp(s1, size, s2) == expected


def _oracle(s1: bytes, size: int, s2: bytes) -> int:
    """C's strncmp sign from Python's byte-string order (unsigned, a prefix
    sorts first, as a NUL does in C)."""
    a, b = s1[:size].split(b"\0", 1)[0], s2[:size]
    return (a > b) - (a < b)


# Few distinct bytes, so that equal prefixes are common: NUL, "`abc" and some high bytes.
_TEXT = st.binary(max_size=12).map(lambda b: bytes(0 if c < 0x10 else c % 4 + 0x60 if c < 0x80 else c for c in b))


@given(_TEXT, st.integers(0, 12), _TEXT.map(lambda b: b.replace(b"\0", b"")))
def test_strncmp_agrees_with_the_order_of_byte_strings(s1: bytes, size: int, s2: bytes) -> None:
    s1 = s1.ljust(size, b"\0")[:max(size, len(s1))]
    assert strncmp(s1, size, s2) == _oracle(s1, size, s2)
    assert compare(s1 + b"\0", s2 + b"\0", size) == _oracle(s1, size, s2)


def test_s2_must_be_nul_terminated() -> None:
    with pytest.raises(NotAConstString) as info:
        strncmp(b"abc", 3, b"abc", terminate=False)
    assert info.value.pc == 3 and info.value.address == 0x1000_0000_0000 + S2_AT
    assert "mem" in info.value.region


def test_s1_must_be_readable_for_s1_sz_bytes() -> None:
    with pytest.raises(MemoryFault):
        strncmp(b"abc", 64, b"abc")  # 64 bytes at s1 overrun the 36-byte input memory


def test_prototype_follows_the_kernel() -> None:
    helper = default_registry()[182]
    assert helper.name == "bpf_strncmp"
    assert helper.proto.args == (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE, ArgKind.PTR_TO_CONST_STR)
    assert helper.proto.flags(0) == ArgFlag.RDONLY
    assert not helper.proto.gpl_only
