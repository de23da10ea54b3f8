"""Comparisons between two bounded values: is the outcome known, and what does each outcome teach?

For a comparison ``a <op> b`` of two :class:`~.bounds.ScalarBounds`, on all
64 bits or on the low 32 bits only (``is32``):

* :func:`branch_taken` answers ``True`` when the comparison holds for every
  pair of members, ``False`` when it holds for none, ``None`` otherwise;
* :func:`refine` narrows both operands to the members that can make the
  comparison come out as ``taken`` (``True``: it holds; ``False``: it fails).
  Every pair of members ``(x, y)`` with that outcome stays inside the
  result, which is the whole promise; an outcome no pair can produce may give
  a state that :meth:`~.bounds.ScalarBounds.is_empty` recognises.

The operations (:class:`Cmp`) are ``eq ne gt ge lt le`` (unsigned), ``sgt sge
slt sle`` (signed) and ``set`` (``a & b != 0``).  The rules are those of the
Linux 6.18 eBPF verifier (``is_scalar_branch_taken`` and ``regs_refine_cond_op``),
written from their semantics, so the states match the kernel's.
"""

from __future__ import annotations

from enum import Enum

from .bounds import ScalarBounds, _Reg
from .tnum import MASK32, MASK64, Tnum

__all__ = ["Cmp", "branch_taken", "refine", "negate", "swap"]


class Cmp(str, Enum):
    """A comparison ``a <op> b``; ``Cmp("gt")`` works too."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"     # unsigned >
    GE = "ge"
    LT = "lt"
    LE = "le"
    SGT = "sgt"   # signed >
    SGE = "sge"
    SLT = "slt"
    SLE = "sle"
    SET = "set"   # a & b != 0

    def __str__(self) -> str:
        return self.value


# The opposite outcome of each comparison.  "not set" has no name in the ISA; the
# module uses a private marker for it.
_NOT_SET = "notset"

_NEGATE = {
    Cmp.EQ: Cmp.NE, Cmp.NE: Cmp.EQ,
    Cmp.GT: Cmp.LE, Cmp.LE: Cmp.GT, Cmp.GE: Cmp.LT, Cmp.LT: Cmp.GE,
    Cmp.SGT: Cmp.SLE, Cmp.SLE: Cmp.SGT, Cmp.SGE: Cmp.SLT, Cmp.SLT: Cmp.SGE,
}

# a <op> b  is the same as  b <swapped op> a
_SWAP = {
    Cmp.EQ: Cmp.EQ, Cmp.NE: Cmp.NE, Cmp.SET: Cmp.SET,
    Cmp.GT: Cmp.LT, Cmp.LT: Cmp.GT, Cmp.GE: Cmp.LE, Cmp.LE: Cmp.GE,
    Cmp.SGT: Cmp.SLT, Cmp.SLT: Cmp.SGT, Cmp.SGE: Cmp.SLE, Cmp.SLE: Cmp.SGE,
}


def negate(op: Cmp | str) -> Cmp:
    """The comparison that holds exactly when ``op`` fails (``set`` has none: ValueError)."""
    op = Cmp(op)
    if op is Cmp.SET:
        raise ValueError("'set' has no negated comparison")
    return _NEGATE[op]


def swap(op: Cmp | str) -> Cmp:
    """The comparison with the operands exchanged: ``a < b`` is ``b > a``."""
    return _SWAP[Cmp(op)]


# ---------------------------------------------------------------------- views

class _View:
    """The four ranges and the tnum of one operand at the comparison's width."""

    __slots__ = ("t", "umin", "umax", "smin", "smax")

    def __init__(self, b: ScalarBounds, is32: bool) -> None:
        if is32:
            self.t = b.var_off.subreg()
            self.umin, self.umax, self.smin, self.smax = b.u32_min, b.u32_max, b.s32_min, b.s32_max
        else:
            self.t = b.var_off
            self.umin, self.umax, self.smin, self.smax = b.umin, b.umax, b.smin, b.smax


def _is_const(b: ScalarBounds, is32: bool) -> bool:
    return b.var_off.is_subreg_const() if is32 else b.var_off.is_const()


def _const_value(b: ScalarBounds, is32: bool) -> int:
    return b.var_off.value & MASK32 if is32 else b.var_off.value


def _disjoint_ranges(a: _View, b: _View) -> bool:
    return a.umin > b.umax or a.umax < b.umin or a.smin > b.smax or a.smax < b.smin


def _disjoint32(a: ScalarBounds, b: ScalarBounds) -> bool:
    return (a.u32_min > b.u32_max or a.u32_max < b.u32_min
            or a.s32_min > b.s32_max or a.s32_max < b.s32_min)


# ---------------------------------------------------------------------- branch_taken

def branch_taken(op: Cmp | str, a: ScalarBounds, b: ScalarBounds, is32: bool = False) -> bool | None:
    """``True`` if ``a <op> b`` holds for all members, ``False`` if for none, else ``None``."""
    op = Cmp(op)
    x, y = _View(a, is32), _View(b, is32)
    if op in (Cmp.EQ, Cmp.NE):
        equal: bool | None = None
        if x.t.is_const() and y.t.is_const():
            equal = x.t.value == y.t.value
        elif not x.t.overlaps(y.t) or _disjoint_ranges(x, y) or (not is32 and _disjoint32(a, b)):
            equal = False
        if equal is None:
            return None
        return equal if op is Cmp.EQ else not equal
    if op is Cmp.SET:
        if not _is_const(b, is32):
            x, y, b = y, x, a
        if not _is_const(b, is32):
            return None
        if x.t.value & y.t.value:
            return True
        if not (x.t.value | x.t.mask) & y.t.value:
            return False
        return None
    if op is Cmp.GT:
        return True if x.umin > y.umax else False if x.umax <= y.umin else None
    if op is Cmp.GE:
        return True if x.umin >= y.umax else False if x.umax < y.umin else None
    if op is Cmp.LT:
        return True if x.umax < y.umin else False if x.umin >= y.umax else None
    if op is Cmp.LE:
        return True if x.umax <= y.umin else False if x.umin > y.umax else None
    if op is Cmp.SGT:
        return True if x.smin > y.smax else False if x.smax <= y.smin else None
    if op is Cmp.SGE:
        return True if x.smin >= y.smax else False if x.smax < y.smin else None
    if op is Cmp.SLT:
        return True if x.smax < y.smin else False if x.smin >= y.smax else None
    if op is Cmp.SLE:
        return True if x.smax <= y.smin else False if x.smin > y.smax else None
    raise ValueError(f"unknown comparison {op!r}")  # pragma: no cover


# ---------------------------------------------------------------------- refine

def _wrap_s32(x: int) -> int:
    x &= MASK32
    return x - (1 << 32) if x >> 31 else x


def _wrap_s64(x: int) -> int:
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def refine(op: Cmp | str, a: ScalarBounds, b: ScalarBounds, is32: bool, taken: bool
           ) -> tuple[ScalarBounds, ScalarBounds]:
    """Narrow ``a`` and ``b`` to the members for which ``a <op> b`` is ``taken``.

    Both results are brought in agreement (:meth:`~.bounds.ScalarBounds.sync`).
    """
    op = Cmp(op)
    target: Cmp | str = op if taken else (_NOT_SET if op is Cmp.SET else _NEGATE[op])
    ra, rb = _Reg(a), _Reg(b)   # updated in place below, whichever role each plays
    if target in (Cmp.GE, Cmp.GT, Cmp.SGE, Cmp.SGT):
        # a > b is b < a: reuse the "less" rules with the operands exchanged
        _refine(_SWAP[target], rb, ra, b, a, is32)
    else:
        _refine(target, ra, rb, a, b, is32)
    ra.sync()
    rb.sync()
    return ra.freeze(), rb.freeze()


def _refine(op: Cmp | str, r1: _Reg, r2: _Reg, c1: ScalarBounds, c2: ScalarBounds, is32: bool) -> None:
    if op is Cmp.EQ:
        if is32:
            r1.u32_min = r2.u32_min = max(r1.u32_min, r2.u32_min)
            r1.u32_max = r2.u32_max = min(r1.u32_max, r2.u32_max)
            r1.s32_min = r2.s32_min = max(r1.s32_min, r2.s32_min)
            r1.s32_max = r2.s32_max = min(r1.s32_max, r2.s32_max)
            t = r1.var_off.subreg().intersect(r2.var_off.subreg())
            r1.var_off = r1.var_off.with_subreg(t)
            r2.var_off = r2.var_off.with_subreg(t)
        else:
            r1.umin = r2.umin = max(r1.umin, r2.umin)
            r1.umax = r2.umax = min(r1.umax, r2.umax)
            r1.smin = r2.smin = max(r1.smin, r2.smin)
            r1.smax = r2.smax = min(r1.smax, r2.smax)
            r1.var_off = r2.var_off = r1.var_off.intersect(r2.var_off)
        return
    if op in (Cmp.NE, Cmp.SET, _NOT_SET):
        # These learn only against a constant: make r2 the constant one.
        if not _is_const(c2, is32):
            r1, r2, c1, c2 = r2, r1, c2, c1
        if not _is_const(c2, is32):
            return
        val = _const_value(c2, is32)
        if op is Cmp.NE:
            # a value known to differ from val cannot sit on a bound equal to it
            if is32:
                if r1.u32_min == val:
                    r1.u32_min = (r1.u32_min + 1) & MASK32
                if r1.u32_max == val:
                    r1.u32_max = (r1.u32_max - 1) & MASK32
                if r1.s32_min == _wrap_s32(val):
                    r1.s32_min = _wrap_s32(r1.s32_min + 1)
                if r1.s32_max == _wrap_s32(val):
                    r1.s32_max = _wrap_s32(r1.s32_max - 1)
            else:
                if r1.umin == val:
                    r1.umin = (r1.umin + 1) & MASK64
                if r1.umax == val:
                    r1.umax = (r1.umax - 1) & MASK64
                if r1.smin == _wrap_s64(val):
                    r1.smin = _wrap_s64(r1.smin + 1)
                if r1.smax == _wrap_s64(val):
                    r1.smax = _wrap_s64(r1.smax - 1)
        elif op is Cmp.SET:
            # a & val != 0 says which bit is set only when val has a single bit
            if val == 0 or val & (val - 1):
                return
            if is32:
                r1.var_off = r1.var_off.with_subreg(r1.var_off.subreg().or_(Tnum.const(val)))
            else:
                r1.var_off = r1.var_off.or_(Tnum.const(val))
        else:   # not set: every bit of val is clear; ranges are re-derived from the bits
            r1.unbounded()
            if is32:
                r1.var_off = r1.var_off.with_subreg(r1.var_off.subreg().and_(Tnum.const(~val)))
            else:
                r1.var_off = r1.var_off.and_(Tnum.const(~val))
        return
    if is32:
        if op is Cmp.LE:
            r1.u32_max = min(r1.u32_max, r2.u32_max)
            r2.u32_min = max(r1.u32_min, r2.u32_min)
        elif op is Cmp.LT:
            r1.u32_max = min(r1.u32_max, (r2.u32_max - 1) & MASK32)
            r2.u32_min = max((r1.u32_min + 1) & MASK32, r2.u32_min)
        elif op is Cmp.SLE:
            r1.s32_max = min(r1.s32_max, r2.s32_max)
            r2.s32_min = max(r1.s32_min, r2.s32_min)
        elif op is Cmp.SLT:
            r1.s32_max = min(r1.s32_max, _wrap_s32(r2.s32_max - 1))
            r2.s32_min = max(_wrap_s32(r1.s32_min + 1), r2.s32_min)
    else:
        if op is Cmp.LE:
            r1.umax = min(r1.umax, r2.umax)
            r2.umin = max(r1.umin, r2.umin)
        elif op is Cmp.LT:
            r1.umax = min(r1.umax, (r2.umax - 1) & MASK64)
            r2.umin = max((r1.umin + 1) & MASK64, r2.umin)
        elif op is Cmp.SLE:
            r1.smax = min(r1.smax, r2.smax)
            r2.smin = max(r1.smin, r2.smin)
        elif op is Cmp.SLT:
            r1.smax = min(r1.smax, _wrap_s64(r2.smax - 1))
            r2.smin = max(_wrap_s64(r1.smin + 1), r2.smin)
