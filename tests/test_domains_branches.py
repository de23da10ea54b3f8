"""Comparisons between ScalarBounds: branch_taken is never wrong, refine never loses a
pair of members that takes the edge, and the states match real 6.18 verifier logs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.verifier.domains import Cmp, ScalarBounds, Tnum, branch_taken, negate, refine, swap
from fuzz_budget import examples
from test_domains_bounds import CMPS, ref_cmp, scalar_and_member, words

SB = ScalarBounds
U = SB.unknown()
CMP_SETTINGS = settings(max_examples=examples(40))


def k(v: int) -> ScalarBounds:
    return SB.const(v)


@st.composite
def operand_pair(draw):
    """Two abstract values with a member each; the second is often a constant (an immediate)."""
    a, x = draw(scalar_and_member())
    if draw(st.booleans()):
        y = draw(words)
        b = SB.const(y)
    else:
        b, y = draw(scalar_and_member())
    return a, x, b, y


# ---------------------------------------------------------------------- soundness

@pytest.mark.parametrize("is32", [False, True], ids=["jmp64", "jmp32"])
@pytest.mark.parametrize("op", CMPS)
@CMP_SETTINGS
@given(pair=operand_pair())
def test_branch_taken_is_never_wrong(op, is32, pair):
    a, x, b, y = pair
    verdict = branch_taken(op, a, b, is32)
    if verdict is not None:
        assert verdict == ref_cmp(op, x, y, is32)


@pytest.mark.parametrize("is32", [False, True], ids=["jmp64", "jmp32"])
@pytest.mark.parametrize("op", CMPS)
@CMP_SETTINGS
@given(pair=operand_pair())
def test_refine_keeps_the_pairs_on_that_edge(op, is32, pair):
    a, x, b, y = pair
    outcome = ref_cmp(op, x, y, is32)
    ra, rb = refine(op, a, b, is32, outcome)
    assert ra.contains(x), f"{x:#x} lost from {a.describe()} -> {ra.describe()}"
    assert rb.contains(y), f"{y:#x} lost from {b.describe()} -> {rb.describe()}"
    # what the kernel continues with is sound too, and a reachable edge is consistent
    assert ra.invariant_violation() is None and rb.invariant_violation() is None
    assert not ra.is_empty() and not rb.is_empty()


@settings(max_examples=examples(60))
@given(pair=operand_pair(), op=st.sampled_from(CMPS), is32=st.booleans())
def test_refine_against_itself_for_a_decided_branch(pair, op, is32):
    """When the outcome is known, refining on that edge keeps the operands' members."""
    a, x, b, y = pair
    verdict = branch_taken(op, a, b, is32)
    if verdict is not None:
        ra, rb = refine(op, a, b, is32, verdict)
        assert ra.contains(x) and rb.contains(y)


@settings(max_examples=examples(100))
@given(x=words, y=words, op=st.sampled_from(CMPS), is32=st.booleans())
def test_negate_and_swap(x, y, op, is32):
    if op != "set":
        assert ref_cmp(negate(op), x, y, is32) == (not ref_cmp(op, x, y, is32))
    assert ref_cmp(swap(op), y, x, is32) == ref_cmp(op, x, y, is32)
    # constants decide every comparison, exactly
    assert branch_taken(op, k(x), k(y), is32) == ref_cmp(op, x, y, is32)


def test_cmp_names():
    assert Cmp("gt") is Cmp.GT and str(Cmp.SLE) == "sle"
    assert negate("lt") is Cmp.GE and swap(Cmp.SGT) is Cmp.SLT
    with pytest.raises(ValueError):
        negate("set")
    with pytest.raises(ValueError):
        Cmp("jgt")


# ---------------------------------------------------------------------- decisions

class TestDecisions:
    def test_ranges_decide(self):
        small = U.and_(k(255))
        assert branch_taken("lt", small, k(256), False) is True
        assert branch_taken("gt", small, k(255), False) is False
        assert branch_taken("ge", small, k(100), False) is None
        assert branch_taken("sge", small, k(0), False) is True
        assert branch_taken("slt", U.movsx(1), k(-128), False) is False

    def test_known_bits_decide_equality(self):
        # from a 6.18 log: r2 &= 12; "if r2 == 0x5" is never taken (bit 0 is known 0),
        # "if r2 == 0x4" may be
        r2 = U.and_(k(12))
        assert branch_taken("eq", r2, k(5), False) is False
        assert branch_taken("ne", r2, k(5), False) is True
        assert branch_taken("eq", r2, k(4), False) is None
        assert str(refine("eq", r2, k(4), False, True)[0]) == "4"

    def test_32bit_ranges_decide_64bit_equality(self):
        low_small = SB.from_ranges(u32_max=10)
        assert branch_taken("eq", low_small, k(1 << 40 | 20), False) is False
        assert branch_taken("eq", low_small, k(20), True) is False

    def test_set_needs_a_constant(self):
        r = U.and_(k(0xF0))
        assert branch_taken("set", r, k(0x0F), False) is False
        assert branch_taken("set", U.or_(k(0x10)), k(0x30), False) is True
        assert branch_taken("set", r, U.and_(k(0x0F)), False) is None
        assert branch_taken("set", k(0x0F), r, False) is False   # either side may be the constant
        assert branch_taken("set", k(1 << 40), k(1 << 40), True) is False

    def test_jset_low_half(self):
        r = SB.from_tnum(Tnum(0x1_0000_0000, 0x3))
        t, _ = refine("set", r, k(2), True, True)
        assert t.var_off == Tnum(0x1_0000_0002, 0x1)


# ---------------------------------------------------------------------- states read from real 6.18 logs

def edges(op, a, b, is32=False):
    """(fall-through state, taken state) of the first operand, as the kernel prints them."""
    return str(refine(op, a, b, is32, False)[0]), str(refine(op, a, b, is32, True)[0])


class TestKernelLogs:
    def test_jgt_after_and(self):
        # r2 &= 255; if r2 > 0x64 goto
        assert edges("gt", U.and_(k(255)), k(100)) == (
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=100,var_off=(0x0; 0x7f))",
            "scalar(smin=umin=smin32=umin32=101,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))")

    def test_jset_edges(self):
        # r3 &= 255; if r3 & 0x40 goto
        assert edges("set", U.and_(k(255)), k(0x40)) == (
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=191,var_off=(0x0; 0xbf))",
            "scalar(smin=umin=smin32=umin32=64,smax=umax=smax32=umax32=255,var_off=(0x40; 0xbf))")
        # r2 in 10..20; if r2 & 0x1 goto: the not-set edge forgets the ranges first
        r2 = refine("gt", refine("lt", U.and_(k(255)), k(10), False, False)[0], k(20), False, False)[0]
        assert str(r2) == "scalar(smin=umin=smin32=umin32=10,smax=umax=smax32=umax32=20,var_off=(0x0; 0x1f))"
        assert edges("set", r2, k(1)) == (
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=30,var_off=(0x0; 0x1e))",
            "scalar(smin=umin=smin32=umin32=10,smax=umax=smax32=umax32=20,var_off=(0x1; 0x1e))")
        # r2 in 0..100 (var_off 0x7f): "if r2 & 0x80" is decided
        assert branch_taken("set", refine("gt", U.and_(k(255)), k(100), False, False)[0], k(0x80), False) is False

    def test_jslt32_after_movsx32(self):
        # r1 = (s32)r6; if w1 s< 0x0 goto
        assert edges("slt", U.movsx(4), k(0), True) == (
            "scalar(smin=smin32=0,smax=umax=umax32=0x7fffffff,var_off=(0x0; 0x7fffffff))",
            ("scalar(smin=0xffffffff80000000,smax=smax32=-1,umin=0xffffffff80000000,umin32=0x80000000,"
             "var_off=(0xffffffff80000000; 0x7fffffff))"))

    def test_jge_on_wrapping_range(self):
        # w2 = w2; r2 -= 5; if r2 >= 0x1000 goto
        assert edges("ge", U.mov32().sub(k(5)), k(0x1000)) == (
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=4095,var_off=(0x0; 0xfff))",
            "scalar(smin=-5,smax=0xfffffffa,umin=4096)")

    def test_jge_on_unknown(self):
        # if r4 >= 0x9000 goto (id printing aside)
        assert edges("ge", U, k(0x9000)) == (
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=0x8fff,var_off=(0x0; 0xffff))",
            "scalar(umin=36864)")

    def test_signed_window(self):
        # if r6 s> 0x7f goto; if r6 s< -128 goto
        assert edges("sgt", U, k(127))[0] == "scalar(smax=127)"
        window_state = refine("sgt", U, k(127), False, False)[0]
        assert edges("slt", window_state, k(-128)) == (
            "scalar(smin=smin32=-128,smax=smax32=127)",
            ("scalar(smax=-129,umin=0x8000000000000000,umax=0xffffffffffffff7f,"
             "var_off=(0x8000000000000000; 0x7fffffffffffffff))"))
        # if r7 s> 0x3e8 goto (taken edge)
        assert edges("sgt", U, k(1000))[1] == \
            "scalar(smin=umin=1001,umax=0x7fffffffffffffff,var_off=(0x0; 0x7fffffffffffffff))"
        # the same window in 32 bits: if w8 s< -100 goto; if w8 s> 100 goto
        w8 = refine("slt", U, k(-100), True, False)[0]
        assert str(w8) == "scalar(smin32=-100)"
        assert str(refine("sgt", w8, k(100), True, False)[0]) == "scalar(smin32=-100,smax32=100)"

    def test_register_against_register(self):
        # r3 = r6 & 0xc | 1; r4 = r6 & 3; if r3 == r4 goto: on the taken edge both are 1
        r3, r4 = U.and_(k(12)).or_(k(1)), U.and_(k(3))
        assert str(r3) == "scalar(smin=umin=smin32=umin32=1,smax=umax=smax32=umax32=13,var_off=(0x1; 0xc))"
        taken = refine("eq", r3, r4, False, True)
        assert (str(taken[0]), str(taken[1])) == ("1", "1")
        # r3 = r6 & 255; r4 = r6 & 0xf0; if r3 == r4 goto: r3 becomes r4's shape
        t3, t4 = refine("eq", U.and_(k(255)), U.and_(k(0xF0)), False, True)
        assert str(t3) == str(t4) == "scalar(smin=smin32=0,smax=umax=smax32=umax32=240,var_off=(0x0; 0xf0))"

    def test_unreachable_edge_reports_an_invariant_violation(self):
        # From a 6.18 log: "if r6 s<= r7" with r6 = 0xffff8000 and r7 below: the
        # fall-through edge cannot happen, the kernel logs
        #   verifier bug: REG INVARIANTS VIOLATION (false_reg2): range bounds violation u64=[...] ...
        # and continues with r7's ranges forgotten.
        r6 = k(0xFFFF8000)
        r7 = SB(Tnum(0, 0x7FFFFFFF5E98FF04), 0xEC7CC6E9, 0x7FFFFFFF5E98FF04, 0xEC7CC6E9, 0x7FFFFFFF5E98FF04,
                0, 0x5E98FF04, 0, 0x5E98FF04)
        assert str(r7) == ("scalar(smin=umin=0xec7cc6e9,smax=umax=0x7fffffff5e98ff04,smin32=0,"
                           "smax32=umax32=0x5e98ff04,var_off=(0x0; 0x7fffffff5e98ff04))")
        assert branch_taken("sle", r6, r7, False) is None
        _, false_r7 = refine("sle", r6, r7, False, False)
        assert false_r7.invariant_violation() == "range bounds violation"
        assert false_r7.bounds_text() == ("u64=[0x0, 0x7fffffff5e98ff04] s64=[0x0, 0xffffffffffff7fff] "
                                          "u32=[0xec7cc6e9, 0x5e98ff04] s32=[0x0, 0xffff7fff] "
                                          "var_off=(0x0, 0x7fffffff5e98ff04)")
        assert str(false_r7.sanitized()) == "scalar(var_off=(0x0; 0x7fffffff5e98ff04))"
        _, taken_r7 = refine("sle", r6, r7, False, True)
        assert str(taken_r7) == ("scalar(smin=umin=0xffff8000,smax=umax=0x7fffffff5e98ff04,smin32=0,"
                                 "smax32=umax32=0x5e98ff04,var_off=(0x0; 0x7fffffff5e98ff04))")
