"""Tnum (known bits) domain: soundness against concrete members, optimality where it holds, kernel examples.

Concrete semantics here are plain Python on unsigned 64-bit integers, written
independently of the domain.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.verifier.domains import MASK32, MASK64, Tnum
from fuzz_budget import examples

SETTINGS = settings(max_examples=examples(100))


def s64(x: int) -> int:
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def s32(x: int) -> int:
    x &= MASK32
    return x - (1 << 32) if x >> 31 else x


# ---------------------------------------------------------------------- strategies

# Masks shaped like the ones the verifier meets: low bit runs, a few scattered
# bits, whole halves, and arbitrary patterns.
masks = st.one_of(
    st.integers(0, 64).map(lambda n: (1 << n) - 1),
    st.integers(0, 64).flatmap(lambda n: st.integers(0, 64 - n).map(lambda s: ((1 << n) - 1) << s)),
    st.lists(st.integers(0, 63), max_size=6).map(lambda bits: sum({1 << b for b in bits})),
    st.integers(0, MASK64),
    st.sampled_from([0, MASK64, MASK32, MASK64 ^ MASK32, 0x80000000, 1 << 63]),
)
words = st.one_of(st.integers(0, MASK64),
                  st.sampled_from([0, 1, MASK64, MASK32, 0x7FFFFFFF, 0x80000000, 1 << 63, (1 << 63) - 1]))


@st.composite
def tnum_and_member(draw, mask_strategy=masks):
    """A tnum and one of its members (its unknown bits filled at random)."""
    mask = draw(mask_strategy)
    value = draw(words) & ~mask & MASK64
    fill = draw(words) & mask
    return Tnum(value, mask), value | fill


small_masks = st.integers(0, 63).flatmap(
    lambda lo: st.lists(st.integers(0, 63), max_size=5).map(lambda bits: sum({1 << b for b in bits})))


@st.composite
def small_tnum(draw):
    """A tnum with at most five unknown bits, so its members can be enumerated."""
    mask = draw(small_masks)
    return Tnum(draw(words) & ~mask & MASK64, mask)


def best_tnum(values) -> Tnum:
    """The smallest tnum holding every value (the optimal abstraction of a set)."""
    values = list(values)
    first = values[0]
    differ = 0
    for v in values:
        differ |= v ^ first
    return Tnum(first & ~differ & MASK64, differ)


# ---------------------------------------------------------------------- basics

class TestBasics:
    def test_const_and_unknown(self):
        assert Tnum.const(5) == Tnum(5, 0)
        assert Tnum.const(-1) == Tnum(MASK64, 0)
        assert Tnum.unknown() == Tnum(0, MASK64)
        assert Tnum.const(7).is_const() and not Tnum.unknown().is_const()
        assert Tnum.unknown().is_unknown()

    def test_rejects_malformed(self):
        with pytest.raises(ValueError):
            Tnum(1, 1)
        with pytest.raises(ValueError):
            Tnum(1 << 64, 0)
        with pytest.raises(ValueError):
            Tnum(0, -1)

    def test_range_examples(self):
        # the kernel's examples: chi = 4 -> delta 7; chi = 0 -> the constant
        assert Tnum.range(0, 255) == Tnum(0, 0xFF)
        assert Tnum.range(16, 20) == Tnum(16, 7)
        assert Tnum.range(42, 42) == Tnum.const(42)
        assert Tnum.range(0, MASK64) == Tnum.unknown()
        assert Tnum.range(1 << 63, MASK64) == Tnum(1 << 63, (1 << 63) - 1)

    def test_printing_like_the_kernel(self):
        assert str(Tnum(0, 0xFF)) == "(0x0; 0xff)"
        assert str(Tnum(0xFFFFFFFF80000000, 0x7FFFFFFF)) == "(0xffffffff80000000; 0x7fffffff)"
        assert Tnum.const(5).kernel_str() == "5"
        assert Tnum.const(0x10000).kernel_str() == "0x10000"
        assert Tnum(0x40, 0xBF).kernel_str() == "(0x40; 0xbf)"
        assert Tnum(0b100, 0b011).binary().endswith("1xx") and len(Tnum.unknown().binary()) == 64

    def test_mul_example_from_the_kernel_comment(self):
        # x1 * 11: the bits of the first operand pick shifted copies of the second;
        # the unknown bit gives union(0011, 1001) = x0x1
        assert Tnum(0b01, 0b10).mul(Tnum(0b11, 0)) == Tnum(0b0001, 0b1010)
        assert Tnum.const(6).mul(Tnum.const(7)) == Tnum.const(42)
        # the operand order matters for precision (the verifier computes dst * src)
        assert Tnum(0x10, 0x3).mul(Tnum.const(100)) == Tnum(0, 0xFEC)
        assert Tnum.const(100).mul(Tnum(0x10, 0x3)) == Tnum(0x600, 0x1EC)

    def test_operators(self):
        a, b = Tnum(0, 0xF), Tnum.const(1)
        assert a + b == a.add(b) and a - b == a.sub(b) and a * b == a.mul(b)
        assert a & b == a.and_(b) and a | b == a.or_(b) and a ^ b == a.xor(b)
        assert -a == a.neg() and a << 3 == a.lshift(3) and a >> 1 == a.rshift(1)
        assert 3 in a and 16 not in a and "x" not in a

    def test_bounds_views(self):
        t = Tnum(0x8000000000000001, 0x10)
        assert (t.umin, t.umax) == (0x8000000000000001, 0x8000000000000011)
        assert t.smin == s64(0x8000000000000001) and t.smax == s64(0x8000000000000011)
        u = Tnum(0x10, (1 << 63) | 1)
        assert u.smin == s64((1 << 63) | 0x10) and u.smax == 0x11

    def test_subregister_helpers(self):
        t = Tnum(0x1234_0000_0000_0005, 0xF0)
        assert t.subreg() == Tnum(5, 0xF0)
        assert t.clear_subreg() == Tnum(0x1234_0000_0000_0000, 0)
        assert t.with_subreg(Tnum(0xFFFF_FFFF_0000_0007, 0)) == Tnum(0x1234_0000_0000_0007, 0)
        assert t.with_const_subreg(9) == Tnum(0x1234_0000_0000_0009, 0)
        assert Tnum(0x5_0000_0000, 0xF0_0000_0000).is_subreg_const()
        assert t.cast(1) == Tnum(5, 0xF0) and t.cast(2) == Tnum(5, 0xF0) and t.cast(8) == t

    def test_aligned(self):
        assert Tnum(8, 0x30).is_aligned(8) and not Tnum(8, 0x34).is_aligned(8) and Tnum(3, 0).is_aligned(0)

    def test_bswap(self):
        assert Tnum(0, 0xFF00).bswap(16) == Tnum(0, 0xFF)
        assert Tnum(0, 0xFF).bswap(32) == Tnum(0, 0xFF000000)
        assert Tnum.const(0x0102030405060708).bswap(64) == Tnum.const(0x0807060504030201)
        assert Tnum.const(0xAABB_CCDD_0102).bswap(16) == Tnum.const(0x0201)

    def test_arshift32_zero_extends(self):
        assert Tnum.const(0x80000000).arshift(4, 32) == Tnum.const(0xF8000000)
        assert Tnum.const(0x80000000).arshift(4) == Tnum.const(0x08000000)
        assert Tnum.const(1 << 63).arshift(4) == Tnum.const(0xF8 << 56)


# ---------------------------------------------------------------------- soundness

BINARY = {
    "add": (Tnum.add, lambda x, y: (x + y) & MASK64),
    "sub": (Tnum.sub, lambda x, y: (x - y) & MASK64),
    "mul": (Tnum.mul, lambda x, y: (x * y) & MASK64),
    "and": (Tnum.and_, lambda x, y: x & y),
    "or": (Tnum.or_, lambda x, y: x | y),
    "xor": (Tnum.xor, lambda x, y: x ^ y),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(a=tnum_and_member(), b=tnum_and_member())
def test_binary_ops_are_sound(name, a, b):
    (ta, x), (tb, y) = a, b
    abstract, concrete = BINARY[name]
    assert abstract(ta, tb).contains(concrete(x, y))


@SETTINGS
@given(a=tnum_and_member(), k=st.integers(0, 63))
def test_shifts_and_neg_are_sound(a, k):
    t, x = a
    assert t.neg().contains(-x & MASK64)
    assert t.lshift(k).contains((x << k) & MASK64)
    assert t.rshift(k).contains(x >> k)
    assert t.arshift(k).contains((s64(x) >> k) & MASK64)
    if k < 32:
        assert t.arshift(k, 32).contains((s32(x) >> k) & MASK32)


@SETTINGS
@given(a=tnum_and_member(), size=st.sampled_from([1, 2, 4, 8]), bits=st.sampled_from([16, 32, 64]))
def test_width_changes_are_sound(a, size, bits):
    t, x = a
    assert t.cast(size).contains(x & ((1 << (8 * size)) - 1))
    assert t.subreg().contains(x & MASK32)
    assert t.clear_subreg().contains(x & ~MASK32 & MASK64)
    n = bits // 8
    swapped = int.from_bytes((x & ((1 << bits) - 1)).to_bytes(n, "little"), "big")
    assert t.bswap(bits).contains(swapped)


@SETTINGS
@given(a=tnum_and_member(), b=tnum_and_member())
def test_lattice_operations(a, b):
    (ta, x), (tb, y) = a, b
    union = ta.union(tb)
    assert union.contains(x) and union.contains(y)
    assert ta.is_subset_of(union) and tb.is_subset_of(union)
    assert ta.overlaps(ta) and ta.is_subset_of(ta) and ta.is_subset_of(Tnum.unknown())
    # the intersection keeps every common member
    if tb.contains(x):
        assert ta.intersect(tb).contains(x)
        assert ta.overlaps(tb)
    # with_subreg: high half of one member, low half of the other
    assert ta.with_subreg(tb).contains((x & ~MASK32 & MASK64) | (y & MASK32))


@SETTINGS
@given(a=tnum_and_member(), b=tnum_and_member())
def test_subset_implies_containment(a, b):
    (ta, x), (tb, _) = a, b
    if ta.is_subset_of(tb):
        assert tb.contains(x)
    assert ta.contains(x) and ta.umin <= x <= ta.umax and ta.smin <= s64(x) <= ta.smax


@SETTINGS
@given(lo=words, hi=words, pick=st.integers(0, MASK64))
def test_range_holds_the_range(lo, hi, pick):
    lo, hi = min(lo, hi), max(lo, hi)
    t = Tnum.range(lo, hi)
    for v in (lo, hi, lo + pick % (hi - lo + 1)):
        assert t.contains(v)


# ---------------------------------------------------------------------- optimality and exact helpers

OPTIMAL = {"add": BINARY["add"], "sub": BINARY["sub"], "and": BINARY["and"], "or": BINARY["or"],
           "xor": BINARY["xor"]}


@pytest.mark.parametrize("name", sorted(OPTIMAL))
@settings(max_examples=examples(60))
@given(ta=small_tnum(), tb=small_tnum())
def test_bitwise_add_sub_are_optimal(name, ta, tb):
    """No tnum smaller than the result holds all the results (exhaustive on few unknown bits)."""
    abstract, concrete = OPTIMAL[name]
    exact = best_tnum(concrete(x, y) for x in ta.members() for y in tb.members())
    assert abstract(ta, tb) == exact


@settings(max_examples=examples(60))
@given(ta=small_tnum(), tb=small_tnum())
def test_union_and_intersect_are_exact(ta, tb):
    assert ta.union(tb) == best_tnum(ta.members() + tb.members())
    common = set(ta.members()) & set(tb.members())
    if common:
        assert set(ta.intersect(tb).members()) == common
    assert ta.overlaps(tb) == bool(common)


@settings(max_examples=examples(100))
@given(t=small_tnum(), z=st.integers(-3, 3), pick=st.integers(0, MASK64))
def test_next_after(t, z, pick):
    members = t.members()
    for start in (t.value + z, members[pick % len(members)], members[pick % len(members)] + z):
        start &= MASK64
        above = [m for m in members if m > start]
        assert t.next_after(start) == (above[0] if above else t.umax)


@settings(max_examples=examples(60))
@given(t=small_tnum())
def test_members_and_contains_agree(t):
    members = t.members()
    assert len(members) == 1 << t.mask.bit_count()
    assert all(t.contains(m) for m in members)
    known = ~t.mask & MASK64
    if known:
        lowest_known_bit = known & -known
        assert not t.contains(members[0] ^ lowest_known_bit)
