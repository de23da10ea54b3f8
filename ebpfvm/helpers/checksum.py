"""The Internet checksum arithmetic the kernel's checksum helpers use
(include/net/checksum.h, arch/x86/lib/csum-partial_64.c), on Python ints.

A ``wsum`` is a 32-bit ones'-complement partial sum, a ``sum16`` a folded,
complemented 16-bit checksum as it sits in a header. Every value is the
host (little-endian) reading of the bytes, exactly as the kernel computes on
x86_64: fields are never byte-swapped, since ones'-complement addition
commutes with swapping the bytes of every word.

Ones'-complement sums with end-around carry have one quirk that matters for
exact results: the sum is 0 only if every addend was 0; otherwise it is the
value in 1..2**n-1 congruent to the total modulo 2**n - 1 (so "negative
zero", all ones, appears where modular arithmetic would give 0).
"""

from __future__ import annotations

import struct

MASK16 = 0xFFFF
MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF


def csum_add(csum: int, addend: int) -> int:
    """32-bit add with end-around carry (``csum_add``)."""
    res = (csum + addend) & MASK32
    return (res + (res < addend)) & MASK32


def csum_sub(csum: int, addend: int) -> int:
    return csum_add(csum, ~addend & MASK32)


def csum16_add(csum: int, addend: int) -> int:
    res = (csum + addend) & MASK16
    return (res + (res < addend)) & MASK16


def csum16_sub(csum: int, addend: int) -> int:
    return csum16_add(csum, ~addend & MASK16)


def csum_fold(csum: int) -> int:
    """Fold a 32-bit partial sum to 16 bits and complement it (``csum_fold``)."""
    s = (csum & MASK16) + (csum >> 16)
    s = (s & MASK16) + (s >> 16)
    return ~s & MASK16


def csum_from32to16(csum: int) -> int:
    """Fold to 16 bits without complementing (what bpf_csum_diff returns)."""
    s = (csum + (((csum >> 16) | (csum << 16)) & MASK32)) & MASK32
    return s >> 16


def csum_partial(data: bytes, seed: int) -> int:
    """The 32-bit partial sum of ``data`` (little-endian words, the last one
    zero-padded) plus ``seed``, as x86_64's ``csum_partial``: a 64-bit
    end-around-carry accumulation folded to 32 bits."""
    padded = bytes(data) + bytes(-len(data) % 8)
    total = (seed & MASK32) + sum(struct.unpack(f"<{len(padded) // 8}Q", padded))
    while total > MASK64:  # bounded: each pass at least halves the bit length's excess
        total = (total & MASK64) + (total >> 64)
    while total > MASK32:
        total = (total & MASK32) + (total >> 32)
    return total


def csum_replace_by_diff(sum16: int, diff: int) -> int:
    """A header checksum updated by a precomputed 32-bit difference."""
    return csum_fold(csum_add(diff & MASK32, ~sum16 & MASK32))


def csum_replace4(sum16: int, old: int, new: int) -> int:
    """A header checksum after a 32-bit field changed from ``old`` to ``new``."""
    tmp = csum_sub(~sum16 & MASK32, old & MASK32)
    return csum_fold(csum_add(tmp, new & MASK32))


def csum_replace2(sum16: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3 for a 16-bit field: HC' = ~(~HC + ~m + m')."""
    return ~csum16_add(csum16_sub(~sum16 & MASK16, old & MASK16), new & MASK16) & MASK16


def csum_diff(removed: bytes, added: bytes, seed: int) -> int:
    """``bpf_csum_diff``: the checksum of ``added`` minus that of ``removed``,
    on top of ``seed``, folded to 16 bits (the kernel folds it so that the
    result does not depend on the architecture's csum_partial)."""
    ret = seed & MASK32
    if removed and added:
        ret = csum_sub(csum_partial(added, ret), csum_partial(removed, 0))
    elif added:
        ret = csum_partial(added, ret)
    elif removed:
        ret = ~csum_partial(removed, ~ret & MASK32) & MASK32
    return csum_from32to16(ret)
