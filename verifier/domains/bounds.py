"""Bounds of a 64-bit integer seen five ways at once.

A :class:`ScalarBounds` describes a set of 64-bit integers by the
intersection of five views, each an over-approximation of the set:

* ``var_off``, a :class:`~.tnum.Tnum` (which bits are known);
* ``umin..umax``, the value read as an unsigned 64-bit integer;
* ``smin..smax``, the value read as a signed (two's complement) 64-bit integer;
* ``u32_min..u32_max`` and ``s32_min..s32_max``, the same for the low 32 bits.

A value is a member when it lies inside every view (:meth:`ScalarBounds.contains`).
Unsigned fields are Python ints in ``0..2**64-1`` (``0..2**32-1``), signed ones
in ``-2**63..2**63-1`` (``-2**31..2**31-1``).  Objects are immutable: every
operation returns a new one.

Operations mirror machine arithmetic on 64-bit registers: ``a.add(b)`` is the
set of ``(x + y) mod 2**64`` for members ``x`` of ``a`` and ``y`` of ``b``
(or a superset of it).  The ``*32`` variants operate on the low 32 bits and
zero-extend the result into 64 bits.  Division and modulo follow the rules of
eBPF (x / 0 = 0, x % 0 = x); shifts take the amount as an operand and are
only tracked precisely when it is a known constant below the width.

The precision rules are those of the Linux 6.18 eBPF verifier (``reg_bounds_sync``
and the ``adjust_scalar_min_max_vals`` family in ``kernel/bpf/verifier.c``),
written from their semantics: where the kernel gives up (an unknown shift
amount, any division or modulo, a multiplication that may overflow) the
result is equally coarse, so that states and logs agree with the kernel's.
:meth:`ScalarBounds.__str__` prints like the kernel's verifier log:
``scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))``,
or just the value for a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tnum import MASK32, MASK64, Tnum

__all__ = ["ScalarBounds", "S64_MIN", "S64_MAX", "U64_MAX", "S32_MIN", "S32_MAX", "U32_MAX",
           "format_signed", "format_unsigned"]

U64_MAX = MASK64
U32_MAX = MASK32
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1
S32_MIN = -(1 << 31)
S32_MAX = (1 << 31) - 1


# ---------------------------------------------------------------------- C-style casts

def _u64(x: int) -> int:
    return x & MASK64


def _s64(x: int) -> int:
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def _u32(x: int) -> int:
    return x & MASK32


def _s32(x: int) -> int:
    x &= MASK32
    return x - (1 << 32) if x >> 31 else x


def _sext(x: int, size: int) -> int:
    """Sign-extend the low ``size`` bytes of ``x`` to a Python int."""
    bits = 8 * size
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


# ---------------------------------------------------------------------- printing numbers

def format_unsigned(value: int) -> str:
    """The kernel log's unsigned number: decimal up to 0xffff, hex above."""
    value &= MASK64
    return str(value) if value <= 0xFFFF else f"{value:#x}"


def format_signed(value: int) -> str:
    """The kernel log's signed number: decimal within -32768..32767, else the
    64-bit two's complement pattern in hex."""
    value = _s64(value)
    return str(value) if -0x8000 <= value <= 0x7FFF else f"{value & MASK64:#x}"


# ---------------------------------------------------------------------- the mutable work area

class _Reg:
    """The nine fields while an operation updates them in place (like the kernel's reg state)."""

    __slots__ = ("var_off", "smin", "smax", "umin", "umax", "s32_min", "s32_max", "u32_min", "u32_max")

    def __init__(self, b: ScalarBounds) -> None:
        self.var_off = b.var_off
        self.smin, self.smax, self.umin, self.umax = b.smin, b.smax, b.umin, b.umax
        self.s32_min, self.s32_max, self.u32_min, self.u32_max = b.s32_min, b.s32_max, b.u32_min, b.u32_max

    def freeze(self) -> ScalarBounds:
        return ScalarBounds(self.var_off, self.smin, self.smax, self.umin, self.umax,
                            self.s32_min, self.s32_max, self.u32_min, self.u32_max)

    # -- resetting

    def unbounded64(self) -> None:
        self.smin, self.smax, self.umin, self.umax = S64_MIN, S64_MAX, 0, U64_MAX

    def unbounded32(self) -> None:
        self.s32_min, self.s32_max, self.u32_min, self.u32_max = S32_MIN, S32_MAX, 0, U32_MAX

    def unbounded(self) -> None:
        self.unbounded64()
        self.unbounded32()

    def known(self, value: int) -> None:
        self.var_off = Tnum.const(value)
        self.smin = self.smax = _s64(value)
        self.umin = self.umax = _u64(value)
        self.s32_min = self.s32_max = _s32(value)
        self.u32_min = self.u32_max = _u32(value)

    def known32(self, value: int) -> None:
        self.var_off = self.var_off.with_const_subreg(value)
        self.s32_min = self.s32_max = _s32(value)
        self.u32_min = self.u32_max = _u32(value)

    # -- learning bounds from the tnum

    def update32(self) -> None:
        t = self.var_off.subreg()
        self.s32_min = max(self.s32_min, _s32(t.value | (t.mask & 0x80000000)))
        self.s32_max = min(self.s32_max, _s32(t.value | (t.mask & 0x7FFFFFFF)))
        self.u32_min = max(self.u32_min, t.value)
        self.u32_max = min(self.u32_max, t.value | t.mask)

    def update64(self) -> None:
        t = self.var_off
        self.smin = max(self.smin, t.smin)
        self.smax = min(self.smax, t.smax)
        self.umin = max(self.umin, t.umin)
        self.umax = min(self.umax, t.umax)
        # If the tnum has a single member inside umin..umax, the value is known.
        nxt = t.next_after(self.umin)
        if t.contains(self.umin):
            if nxt > self.umax:                 # umin is the only member in range
                self.known(self.umin)
        elif nxt == t.umax or (nxt <= self.umax and t.next_after(nxt) > self.umax):
            self.known(nxt)                     # the first member above umin is the only one

    def update(self) -> None:
        self.update32()
        self.update64()

    # -- learning between the ranges

    def _narrow_s32(self, lo: int, hi: int) -> None:
        self.s32_min = max(self.s32_min, lo)
        self.s32_max = min(self.s32_max, hi)

    def _narrow_u32(self, lo: int, hi: int) -> None:
        self.u32_min = max(self.u32_min, lo)
        self.u32_max = min(self.u32_max, hi)

    def deduce32(self) -> None:
        """Low-32-bit ranges from the 64-bit ones, then signed <-> unsigned within 32 bits."""
        # A 64-bit range whose upper halves are all equal is a range of its low halves.
        if self.umin >> 32 == self.umax >> 32:
            self._narrow_u32(_u32(self.umin), _u32(self.umax))
            if _s32(self.umin) <= _s32(self.umax):
                self._narrow_s32(_s32(self.umin), _s32(self.umax))
        if self.smin >> 32 == self.smax >> 32:
            if _u32(self.smin) <= _u32(self.smax):
                self._narrow_u32(_u32(self.smin), _u32(self.smax))
            if _s32(self.smin) <= _s32(self.smax):
                self._narrow_s32(_s32(self.smin), _s32(self.smax))
        # Upper halves that are two consecutive numbers, with the low halves running from
        # negative to non-negative: the low halves still form a signed range.
        if (_u32(self.umin >> 32) + 1) & MASK32 == _u32(self.umax >> 32) \
                and _s32(self.umin) < 0 <= _s32(self.umax):
            self._narrow_s32(_s32(self.umin), _s32(self.umax))
        if (_u32(self.smin >> 32) + 1) & MASK32 == _u32(self.smax >> 32) \
                and _s32(self.smin) < 0 <= _s32(self.smax):
            self._narrow_s32(_s32(self.smin), _s32(self.smax))
        # A range that does not cross the sign boundary means the same signed and unsigned.
        if _s32(self.u32_min) <= _s32(self.u32_max):
            self._narrow_s32(_s32(self.u32_min), _s32(self.u32_max))
        if _u32(self.s32_min) <= _u32(self.s32_max):
            self._narrow_u32(_u32(self.s32_min), _u32(self.s32_max))
        elif self.u32_max < _u32(self.s32_min):
            # The signed range wraps through -1..0; the unsigned one meets only its non-negative part
            self.s32_min = _s32(self.u32_min)
            self.u32_max = min(self.u32_max, _u32(self.s32_max))
        elif _u32(self.s32_max) < self.u32_min:
            # ... or only its negative part.
            self.s32_max = _s32(self.u32_max)
            self.u32_min = max(self.u32_min, _u32(self.s32_min))

    def deduce64(self) -> None:
        """Signed <-> unsigned 64-bit ranges."""
        if _s64(self.umin) <= _s64(self.umax):
            self.smin = max(self.smin, _s64(self.umin))
            self.smax = min(self.smax, _s64(self.umax))
        if _u64(self.smin) <= _u64(self.smax):
            self.umin = max(self.umin, _u64(self.smin))
            self.umax = min(self.umax, _u64(self.smax))
        elif self.umax < _u64(self.smin):
            # The signed range wraps through -1..0 and the unsigned range only
            # meets its non-negative part.
            self.smin = _s64(self.umin)
            self.umax = min(self.umax, _u64(self.smax))
        elif _u64(self.smax) < self.umin:
            # ... or only its negative part.
            self.smax = _s64(self.umax)
            self.umin = max(self.umin, _u64(self.smin))

    def deduce_mixed(self) -> None:
        """64-bit ranges from the 32-bit ones: the low half of each bound moves inside the 32-bit range."""
        new_umin = (self.umin & ~MASK32 & MASK64) | self.u32_min
        new_umax = (self.umax & ~MASK32 & MASK64) | self.u32_max
        self.umin = max(self.umin, new_umin)
        self.umax = min(self.umax, new_umax)
        new_smin = _s64((_u64(self.smin) & ~MASK32) | self.u32_min)
        new_smax = _s64((_u64(self.smax) & ~MASK32) | self.u32_max)
        self.smin = max(self.smin, new_smin)
        self.smax = min(self.smax, new_smax)
        # A sign-extended 32-bit value whose low half is non-negative has upper half 0.
        if self.s32_min >= 0 and self.smin >= S32_MIN and self.smax <= S32_MAX:
            self.smin, self.smax = self.s32_min, self.s32_max
            self.umin, self.umax = _u64(self.s32_min), _u64(self.s32_max)
            self.var_off = self.var_off.intersect(Tnum.range(self.smin, self.smax))

    def deduce(self) -> None:
        self.deduce32()
        self.deduce64()
        self.deduce_mixed()

    def bound_offset(self) -> None:
        """Known bits from the unsigned ranges."""
        var64 = self.var_off.intersect(Tnum.range(self.umin, self.umax))
        var32 = var64.subreg().intersect(Tnum.range(self.u32_min, self.u32_max))
        self.var_off = var64.clear_subreg().or_(var32)

    def _fields(self) -> tuple:
        return (self.smin, self.smax, self.umin, self.umax, self.s32_min, self.s32_max, self.u32_min,
                self.u32_max, self.var_off)

    def sync(self) -> None:
        """``reg_bounds_sync``: three rounds of deduction (a round that changes
        nothing is a fixpoint: the rest would change nothing either)."""
        self.update()
        for _ in range(3):
            before = self._fields()
            self.deduce()
            if self._fields() == before:
                break
        self.bound_offset()
        self.update()

    # -- 32 -> 64

    def zext(self) -> None:
        """The low 32 bits, zero-extended, become the whole value."""
        self.var_off = self.var_off.subreg()
        self.umin, self.umax = self.u32_min, self.u32_max
        if 0 <= self.s32_min and 0 <= self.s32_max:
            self.smin, self.smax = self.s32_min, self.s32_max
        else:
            self.smin, self.smax = 0, U32_MAX

    def truncate(self, size: int) -> None:
        """Keep the low ``size`` bytes (zero-extend them)."""
        self.var_off = self.var_off.cast(size)
        keep = (1 << (8 * size)) - 1
        if self.umin & ~keep == self.umax & ~keep:
            self.umin &= keep
            self.umax &= keep
        else:
            self.umin, self.umax = 0, keep
        self.smin, self.smax = self.umin, self.umax
        if size < 4:
            self.unbounded32()
        self.sync()


def _is_const(b: ScalarBounds, is32: bool) -> bool:
    """A known value that every view agrees on (the kernel's test for a usable shift amount)."""
    if is32:
        return b.var_off.is_subreg_const() and b.s32_min == b.s32_max and b.u32_min == b.u32_max
    return b.var_off.is_const() and b.smin == b.smax and b.umin == b.umax


def _inverted(b: ScalarBounds) -> bool:
    return (b.umin > b.umax or b.smin > b.smax or b.u32_min > b.u32_max or b.s32_min > b.s32_max
            or b.var_off.umin > b.umax or b.var_off.umax < b.umin)


def _add_overflows(lo: int, hi: int, x: int, y: int) -> bool:
    return not lo <= x + y <= hi


# ---------------------------------------------------------------------- the domain

@dataclass(frozen=True, slots=True)
class ScalarBounds:
    """A set of 64-bit values: a tnum plus unsigned/signed ranges of the value and of its low 32 bits."""

    var_off: Tnum
    smin: int
    smax: int
    umin: int
    umax: int
    s32_min: int
    s32_max: int
    u32_min: int
    u32_max: int

    # ------------------------------------------------------------------ constructors

    @staticmethod
    def const(value: int) -> ScalarBounds:
        """Exactly ``value`` (taken modulo 2**64; negative numbers are two's complement)."""
        r = _Reg(_UNKNOWN)
        r.known(value)
        return r.freeze()

    @staticmethod
    def unknown() -> ScalarBounds:
        """Every 64-bit value."""
        return _UNKNOWN

    @staticmethod
    def from_tnum(var_off: Tnum) -> ScalarBounds:
        """The members of ``var_off``, with ranges derived from it."""
        return ScalarBounds.from_ranges(var_off=var_off)

    @staticmethod
    def from_ranges(*, umin: int = 0, umax: int = U64_MAX, smin: int = S64_MIN, smax: int = S64_MAX,
                    u32_min: int = 0, u32_max: int = U32_MAX, s32_min: int = S32_MIN, s32_max: int = S32_MAX,
                    var_off: Tnum | None = None) -> ScalarBounds:
        """The values inside every given range (and tnum), with all views brought in agreement.

        Ranges that exclude each other outright are returned as given (see
        :meth:`is_empty`); otherwise the result may still turn out empty.
        """
        b = ScalarBounds(var_off if var_off is not None else Tnum.unknown(), smin, smax, umin, umax,
                         s32_min, s32_max, u32_min, u32_max)
        return b if _inverted(b) else b.sync()

    # ------------------------------------------------------------------ queries

    def is_const(self) -> bool:
        """A single value (the tnum is fully known)."""
        return self.var_off.is_const()

    def is_const32(self) -> bool:
        """The low 32 bits are a single value."""
        return self.var_off.is_subreg_const()

    @property
    def value(self) -> int:
        """The value of a constant (unsigned 64-bit)."""
        if not self.var_off.is_const():
            raise ValueError(f"not a constant: {self}")
        return self.var_off.value

    def is_unknown(self) -> bool:
        """No knowledge at all."""
        return self == _UNKNOWN

    def contains(self, value: int) -> bool:
        """Whether the 64-bit value (taken modulo 2**64) lies inside every view."""
        u = value & MASK64
        s = _s64(u)
        lo = u & MASK32
        return (self.var_off.contains(u)
                and self.umin <= u <= self.umax
                and self.smin <= s <= self.smax
                and self.u32_min <= lo <= self.u32_max
                and self.s32_min <= _s32(lo) <= self.s32_max)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.contains(value)

    def is_empty(self) -> bool:
        """Certainly no member: some range is inverted or contradicts the tnum.

        Refining on an edge that cannot be taken produces such states.  (The
        check is cheap, not complete: a state may have no member without it.)
        """
        return _inverted(self) or _inverted(self.sync())

    def invariant_violation(self) -> str | None:
        """What the kernel's ``reg_bounds_sanity_check`` would report, or ``None``.

        An inverted range, or a known value the ranges disagree with, can only
        come from an edge or operation no value reaches; the 6.18 verifier then
        logs ``verifier bug: REG INVARIANTS VIOLATION (<where>): <this> <bounds_text()>``
        and goes on with :meth:`forget_ranges`.
        """
        if self.umin > self.umax or self.smin > self.smax or self.u32_min > self.u32_max \
                or self.s32_min > self.s32_max:
            return "range bounds violation"
        t = self.var_off
        if t.is_const() and not (self.umin == self.umax == t.value and self.smin == self.smax == _s64(t.value)):
            return "const tnum out of sync with range bounds"
        if t.is_subreg_const():
            v = t.value & MASK32
            if not (self.u32_min == self.u32_max == v and self.s32_min == self.s32_max == _s32(v)):
                return "const subreg tnum out of sync with range bounds"
        return None

    def forget_ranges(self) -> ScalarBounds:
        """All eight ranges unbounded, the tnum kept (the kernel's recovery from a violation)."""
        return ScalarBounds(self.var_off, S64_MIN, S64_MAX, 0, U64_MAX, S32_MIN, S32_MAX, 0, U32_MAX)

    def sanitized(self) -> ScalarBounds:
        """``self``, or :meth:`forget_ranges` if :meth:`invariant_violation` reports something."""
        return self.forget_ranges() if self.invariant_violation() else self

    def bounds_text(self) -> str:
        """The fields as the kernel's invariant-violation message prints them."""
        return (f"u64=[{self.umin:#x}, {self.umax:#x}] s64=[{_u64(self.smin):#x}, {_u64(self.smax):#x}] "
                f"u32=[{self.u32_min:#x}, {self.u32_max:#x}] s32=[{_u32(self.s32_min):#x}, {_u32(self.s32_max):#x}] "
                f"var_off=({self.var_off.value:#x}, {self.var_off.mask:#x})")

    def is_subset_of(self, other: ScalarBounds) -> bool:
        """Every view lies inside the corresponding view of ``other`` (the kernel's
        ``range_within`` and ``tnum_in``, used for state pruning)."""
        return (other.umin <= self.umin and self.umax <= other.umax
                and other.smin <= self.smin and self.smax <= other.smax
                and other.u32_min <= self.u32_min and self.u32_max <= other.u32_max
                and other.s32_min <= self.s32_min and self.s32_max <= other.s32_max
                and self.var_off.is_subset_of(other.var_off))

    # ------------------------------------------------------------------ lattice

    def sync(self) -> ScalarBounds:
        """Tighten every view with what the others know (the kernel's ``reg_bounds_sync``):
        ranges from known bits, 32-bit ranges from 64-bit ones and back, signed from
        unsigned and back, and finally known bits from the ranges."""
        r = _Reg(self)
        r.sync()
        return r.freeze()

    def join(self, other: ScalarBounds) -> ScalarBounds:
        """A state holding the members of both (hull of each view, union of the tnums)."""
        b = ScalarBounds(self.var_off.union(other.var_off),
                         min(self.smin, other.smin), max(self.smax, other.smax),
                         min(self.umin, other.umin), max(self.umax, other.umax),
                         min(self.s32_min, other.s32_min), max(self.s32_max, other.s32_max),
                         min(self.u32_min, other.u32_min), max(self.u32_max, other.u32_max))
        return b.sync()

    union = join

    def meet(self, other: ScalarBounds) -> ScalarBounds:
        """The values inside both (intersection of every view); may be empty."""
        b = ScalarBounds(self.var_off.intersect(other.var_off),
                         max(self.smin, other.smin), min(self.smax, other.smax),
                         max(self.umin, other.umin), min(self.umax, other.umax),
                         max(self.s32_min, other.s32_min), min(self.s32_max, other.s32_max),
                         max(self.u32_min, other.u32_min), min(self.u32_max, other.u32_max))
        return b.sync()

    def fork_minus_one_or_zero(self) -> tuple[ScalarBounds, ScalarBounds] | None:
        """The two cases of a value the signed ranges pin to -1 or 0, or ``None``.

        Before an AND or OR with a constant, the 6.18 verifier splits such a
        value (a common compiled "mask" idiom) and explores both cases: this
        returns ``(minus_one, zero)``.  When the 64-bit range is ``-1..0`` both
        are whole constants; otherwise, when the low 32 bits are ``-1..0``
        (signed), only the low half and its ranges are set, as the kernel does,
        and the states are not synced.
        """
        if self.smin == -1 and self.smax == 0:
            return ScalarBounds.const(-1), ScalarBounds.const(0)
        if self.s32_min == -1 and self.s32_max == 0:
            out = []
            for v in (U32_MAX, 0):
                r = _Reg(self)
                r.known32(v)
                out.append(r.freeze())
            return out[0], out[1]
        return None

    # ------------------------------------------------------------------ helpers for operations

    def _finish(self, r: _Reg, is32: bool) -> ScalarBounds:
        if is32:
            r.zext()
        r.sync()
        return r.freeze()

    # ------------------------------------------------------------------ add / sub / neg

    @staticmethod
    def _add32(r: _Reg, b: ScalarBounds) -> None:
        if (_add_overflows(S32_MIN, S32_MAX, r.s32_min, b.s32_min)
                or _add_overflows(S32_MIN, S32_MAX, r.s32_max, b.s32_max)):
            r.s32_min, r.s32_max = S32_MIN, S32_MAX
        else:
            r.s32_min, r.s32_max = r.s32_min + b.s32_min, r.s32_max + b.s32_max
        lo, hi = r.u32_min + b.u32_min, r.u32_max + b.u32_max
        if lo <= U32_MAX < hi:   # some sums wrap, others do not
            r.u32_min, r.u32_max = 0, U32_MAX
        else:
            r.u32_min, r.u32_max = _u32(lo), _u32(hi)

    @staticmethod
    def _add64(r: _Reg, b: ScalarBounds) -> None:
        if (_add_overflows(S64_MIN, S64_MAX, r.smin, b.smin)
                or _add_overflows(S64_MIN, S64_MAX, r.smax, b.smax)):
            r.smin, r.smax = S64_MIN, S64_MAX
        else:
            r.smin, r.smax = r.smin + b.smin, r.smax + b.smax
        lo, hi = r.umin + b.umin, r.umax + b.umax
        if lo <= U64_MAX < hi:
            r.umin, r.umax = 0, U64_MAX
        else:
            r.umin, r.umax = _u64(lo), _u64(hi)

    @staticmethod
    def _sub32(r: _Reg, b: ScalarBounds) -> None:
        if (_add_overflows(S32_MIN, S32_MAX, r.s32_min, -b.s32_max)
                or _add_overflows(S32_MIN, S32_MAX, r.s32_max, -b.s32_min)):
            r.s32_min, r.s32_max = S32_MIN, S32_MAX
        else:
            r.s32_min, r.s32_max = r.s32_min - b.s32_max, r.s32_max - b.s32_min
        lo, hi = r.u32_min - b.u32_max, r.u32_max - b.u32_min
        if lo < 0 <= hi:   # some differences wrap, others do not
            r.u32_min, r.u32_max = 0, U32_MAX
        else:
            r.u32_min, r.u32_max = _u32(lo), _u32(hi)

    @staticmethod
    def _sub64(r: _Reg, b: ScalarBounds) -> None:
        if (_add_overflows(S64_MIN, S64_MAX, r.smin, -b.smax)
                or _add_overflows(S64_MIN, S64_MAX, r.smax, -b.smin)):
            r.smin, r.smax = S64_MIN, S64_MAX
        else:
            r.smin, r.smax = r.smin - b.smax, r.smax - b.smin
        lo, hi = r.umin - b.umax, r.umax - b.umin
        if lo < 0 <= hi:
            r.umin, r.umax = 0, U64_MAX
        else:
            r.umin, r.umax = _u64(lo), _u64(hi)

    def _add(self, b: ScalarBounds, is32: bool) -> ScalarBounds:
        r = _Reg(self)
        self._add32(r, b)
        self._add64(r, b)
        r.var_off = self.var_off.add(b.var_off)
        return self._finish(r, is32)

    def _sub(self, b: ScalarBounds, is32: bool) -> ScalarBounds:
        r = _Reg(self)
        self._sub32(r, b)
        self._sub64(r, b)
        r.var_off = self.var_off.sub(b.var_off)
        return self._finish(r, is32)

    def _neg(self, is32: bool) -> ScalarBounds:
        r = _Reg(self)
        r.known(0)
        self._sub32(r, self)
        self._sub64(r, self)
        r.var_off = self.var_off.neg()
        return self._finish(r, is32)

    def add(self, b: ScalarBounds) -> ScalarBounds:
        """``self + b`` modulo 2**64."""
        return self._add(b, False)

    def add32(self, b: ScalarBounds) -> ScalarBounds:
        """Low halves added modulo 2**32, zero-extended."""
        return self._add(b, True)

    def sub(self, b: ScalarBounds) -> ScalarBounds:
        """``self - b`` modulo 2**64."""
        return self._sub(b, False)

    def sub32(self, b: ScalarBounds) -> ScalarBounds:
        return self._sub(b, True)

    def neg(self) -> ScalarBounds:
        """``-self`` modulo 2**64."""
        return self._neg(False)

    def neg32(self) -> ScalarBounds:
        return self._neg(True)

    # ------------------------------------------------------------------ mul

    @staticmethod
    def _mul32(r: _Reg, b: ScalarBounds) -> None:
        if r.u32_max * b.u32_max > U32_MAX:   # the smaller product fits when the larger does
            r.u32_min, r.u32_max = 0, U32_MAX
        else:
            r.u32_min, r.u32_max = r.u32_min * b.u32_min, r.u32_max * b.u32_max
        products = (r.s32_min * b.s32_min, r.s32_min * b.s32_max, r.s32_max * b.s32_min, r.s32_max * b.s32_max)
        if any(not S32_MIN <= p <= S32_MAX for p in products):
            r.s32_min, r.s32_max = S32_MIN, S32_MAX
        else:
            r.s32_min, r.s32_max = min(products), max(products)

    @staticmethod
    def _mul64(r: _Reg, b: ScalarBounds) -> None:
        if r.umax * b.umax > U64_MAX:
            r.umin, r.umax = 0, U64_MAX
        else:
            r.umin, r.umax = r.umin * b.umin, r.umax * b.umax
        products = (r.smin * b.smin, r.smin * b.smax, r.smax * b.smin, r.smax * b.smax)
        if any(not S64_MIN <= p <= S64_MAX for p in products):
            r.smin, r.smax = S64_MIN, S64_MAX
        else:
            r.smin, r.smax = min(products), max(products)

    def _mul(self, b: ScalarBounds, is32: bool) -> ScalarBounds:
        r = _Reg(self)
        r.var_off = self.var_off.mul(b.var_off)
        self._mul32(r, b)
        self._mul64(r, b)
        return self._finish(r, is32)

    def mul(self, b: ScalarBounds) -> ScalarBounds:
        """``self * b`` modulo 2**64; a range product that may overflow is unbounded."""
        return self._mul(b, False)

    def mul32(self, b: ScalarBounds) -> ScalarBounds:
        return self._mul(b, True)

    # ------------------------------------------------------------------ div / mod

    # The 6.18 verifier does not track division or modulo at all: the destination
    # becomes completely unknown, even for the 32-bit forms (no zero extension).

    def div(self, b: ScalarBounds) -> ScalarBounds:
        """Unsigned ``self / b`` (``x / 0 = 0``): unknown, as in the kernel."""
        return _UNKNOWN

    def div32(self, b: ScalarBounds) -> ScalarBounds:
        """Unsigned 32-bit division: unknown (all 64 bits), as in the kernel."""
        return _UNKNOWN

    def sdiv(self, b: ScalarBounds) -> ScalarBounds:
        """Signed division: unknown, as in the kernel."""
        return _UNKNOWN

    def sdiv32(self, b: ScalarBounds) -> ScalarBounds:
        return _UNKNOWN

    def mod(self, b: ScalarBounds) -> ScalarBounds:
        """Unsigned ``self % b`` (``x % 0 = x``): unknown, as in the kernel."""
        return _UNKNOWN

    def mod32(self, b: ScalarBounds) -> ScalarBounds:
        return _UNKNOWN

    def smod(self, b: ScalarBounds) -> ScalarBounds:
        return _UNKNOWN

    def smod32(self, b: ScalarBounds) -> ScalarBounds:
        return _UNKNOWN

    # ------------------------------------------------------------------ and / or / xor

    def _and(self, b: ScalarBounds, is32: bool) -> ScalarBounds:
        r = _Reg(self)
        r.var_off = self.var_off.and_(b.var_off)
        t32 = r.var_off.subreg()
        if b.var_off.is_subreg_const() and t32.is_const():
            r.known32(t32.value)
        else:
            r.u32_min = t32.value
            r.u32_max = min(r.u32_max, b.u32_max)
            self._s32_from_u32(r)
        if b.var_off.is_const() and r.var_off.is_const():
            r.known(r.var_off.value)
        else:
            r.umin = r.var_off.value
            r.umax = min(r.umax, b.umax)
            self._s64_from_u64(r)
            r.update()
        return self._finish(r, is32)

    def _or(self, b: ScalarBounds, is32: bool) -> ScalarBounds:
        r = _Reg(self)
        r.var_off = self.var_off.or_(b.var_off)
        t32 = r.var_off.subreg()
        if b.var_off.is_subreg_const() and t32.is_const():
            r.known32(t32.value)
        else:
            r.u32_min = max(r.u32_min, b.u32_min)
            r.u32_max = t32.value | t32.mask
            self._s32_from_u32(r)
        if b.var_off.is_const() and r.var_off.is_const():
            r.known(r.var_off.value)
        else:
            r.umin = max(r.umin, b.umin)
            r.umax = r.var_off.umax
            self._s64_from_u64(r)
            r.update()
        return self._finish(r, is32)

    def _xor(self, b: ScalarBounds, is32: bool) -> ScalarBounds:
        r = _Reg(self)
        r.var_off = self.var_off.xor(b.var_off)
        t32 = r.var_off.subreg()
        if b.var_off.is_subreg_const() and t32.is_const():
            r.known32(t32.value)
        else:
            r.u32_min, r.u32_max = t32.value, t32.value | t32.mask
            self._s32_from_u32(r)
        if b.var_off.is_const() and r.var_off.is_const():
            r.known(r.var_off.value)
        else:
            r.umin, r.umax = r.var_off.umin, r.var_off.umax
            self._s64_from_u64(r)
            r.update()
        return self._finish(r, is32)

    @staticmethod
    def _s32_from_u32(r: _Reg) -> None:
        if _s32(r.u32_min) <= _s32(r.u32_max):
            r.s32_min, r.s32_max = _s32(r.u32_min), _s32(r.u32_max)
        else:
            r.s32_min, r.s32_max = S32_MIN, S32_MAX

    @staticmethod
    def _s64_from_u64(r: _Reg) -> None:
        if _s64(r.umin) <= _s64(r.umax):
            r.smin, r.smax = _s64(r.umin), _s64(r.umax)
        else:
            r.smin, r.smax = S64_MIN, S64_MAX

    def and_(self, b: ScalarBounds) -> ScalarBounds:
        """Bitwise ``self & b``."""
        return self._and(b, False)

    def and32(self, b: ScalarBounds) -> ScalarBounds:
        return self._and(b, True)

    def or_(self, b: ScalarBounds) -> ScalarBounds:
        """Bitwise ``self | b``."""
        return self._or(b, False)

    def or32(self, b: ScalarBounds) -> ScalarBounds:
        return self._or(b, True)

    def xor(self, b: ScalarBounds) -> ScalarBounds:
        """Bitwise ``self ^ b``."""
        return self._xor(b, False)

    def xor32(self, b: ScalarBounds) -> ScalarBounds:
        return self._xor(b, True)

    # ------------------------------------------------------------------ shifts

    # The amount is an operand like any other; only a known amount below the
    # width is tracked (the kernel rejects larger immediates and forgets the
    # destination for an unknown register amount).

    def lsh(self, b: ScalarBounds) -> ScalarBounds:
        """``self << b`` (64-bit)."""
        if not (_is_const(b, False) and b.umax < 64):
            return _UNKNOWN
        k = b.umin
        r = _Reg(self)
        # 64-bit ranges first: they read the 32-bit ranges before those are shifted.
        if k == 32:
            # Shifting by 32 turns the signed low half into the signed high half.
            r.smin, r.smax = self.s32_min << 32, self.s32_max << 32
        else:
            r.smin, r.smax = S64_MIN, S64_MAX
        if r.umax > 1 << (63 - k):
            r.umin, r.umax = 0, U64_MAX
        else:
            r.umin, r.umax = r.umin << k, r.umax << k
        self._lsh32_ranges(r, k)
        r.var_off = self.var_off.lshift(k)
        r.update()
        return self._finish(r, False)

    @staticmethod
    def _lsh32_ranges(r: _Reg, k: int) -> None:
        r.s32_min, r.s32_max = S32_MIN, S32_MAX
        if k > 31 or r.u32_max > 1 << (31 - k):
            r.u32_min, r.u32_max = 0, U32_MAX
        else:
            r.u32_min, r.u32_max = r.u32_min << k, r.u32_max << k

    def lsh32(self, b: ScalarBounds) -> ScalarBounds:
        """Low half shifted left (modulo 2**32), zero-extended."""
        if not (_is_const(b, True) and b.umax < 32):
            return _UNKNOWN
        k = b.u32_min
        r = _Reg(self)
        self._lsh32_ranges(r, k)
        r.var_off = self.var_off.subreg().lshift(k).subreg()
        r.unbounded64()
        r.update32()
        return self._finish(r, True)

    def rsh(self, b: ScalarBounds) -> ScalarBounds:
        """Logical ``self >> b`` (64-bit)."""
        if not (_is_const(b, False) and b.umax < 64):
            return _UNKNOWN
        k = b.umin
        r = _Reg(self)
        r.smin, r.smax = S64_MIN, S64_MAX
        r.var_off = self.var_off.rshift(k)
        r.umin, r.umax = r.umin >> k, r.umax >> k
        r.unbounded32()
        r.update()
        return self._finish(r, False)

    def rsh32(self, b: ScalarBounds) -> ScalarBounds:
        """Low half shifted right logically, zero-extended."""
        if not (_is_const(b, True) and b.umax < 32):
            return _UNKNOWN
        k = b.u32_min
        r = _Reg(self)
        r.s32_min, r.s32_max = S32_MIN, S32_MAX
        r.var_off = self.var_off.subreg().rshift(k)
        r.u32_min, r.u32_max = r.u32_min >> k, r.u32_max >> k
        r.unbounded64()
        r.update32()
        return self._finish(r, True)

    def arsh(self, b: ScalarBounds) -> ScalarBounds:
        """Arithmetic ``self >> b`` (64-bit, sign bit copied in)."""
        if not (_is_const(b, False) and b.umax < 64):
            return _UNKNOWN
        k = b.umin
        r = _Reg(self)
        r.smin, r.smax = r.smin >> k, r.smax >> k
        r.var_off = self.var_off.arshift(k, 64)
        r.umin, r.umax = 0, U64_MAX
        r.unbounded32()
        r.update()
        return self._finish(r, False)

    def arsh32(self, b: ScalarBounds) -> ScalarBounds:
        """Low half shifted right arithmetically (bit 31 copied in), zero-extended."""
        if not (_is_const(b, True) and b.umax < 32):
            return _UNKNOWN
        k = b.u32_min
        r = _Reg(self)
        r.s32_min, r.s32_max = r.s32_min >> k, r.s32_max >> k
        r.var_off = self.var_off.subreg().arshift(k, 32)
        r.u32_min, r.u32_max = 0, U32_MAX
        r.unbounded64()
        r.update32()
        return self._finish(r, True)

    # ------------------------------------------------------------------ moves and width changes

    def mov32(self) -> ScalarBounds:
        """The low 32 bits, zero-extended (``w1 = w2``)."""
        r = _Reg(self)
        return self._finish(r, True)

    def truncate(self, size: int) -> ScalarBounds:
        """The low ``size`` bytes (1, 2, 4 or 8), zero-extended (a narrow load, ``le16``...)."""
        if size >= 8:
            return self
        r = _Reg(self)
        r.truncate(size)
        return r.freeze()

    def movsx(self, size: int) -> ScalarBounds:
        """The low ``size`` bytes (1, 2 or 4) sign-extended to 64 bits."""
        r = _Reg(self)
        bits = 8 * size
        half = 1 << (bits - 1)
        if self.var_off.is_const():
            r.known(_sext(self.var_off.value, size))
            return r.freeze()
        if -half <= self.s32_min and self.s32_max < half:
            # The low 32 bits already hold a sign-extended ``bits``-wide value, so
            # they do not change and the upper half copies bit 31.
            r.smin, r.smax = self.s32_min, self.s32_max
            r.umin, r.umax = 0, U64_MAX
            r.var_off = Tnum.unknown()
            r.sync()
            return r.freeze()
        top_max = (_u64(self.smax) >> bits) << bits
        top_min = (_u64(self.smin) >> bits) << bits
        if top_max == top_min:
            # smin..smax share their upper bits, so the low parts form a range too.
            lo = min(_sext(self.smin, size), _sext(self.smax, size))
            hi = max(_sext(self.smin, size), _sext(self.smax, size))
            if (lo >= 0) == (hi >= 0):
                r.smin = r.s32_min = lo
                r.smax = r.s32_max = hi
                r.umin, r.umax = _u64(lo), _u64(hi)
                r.u32_min, r.u32_max = _u32(lo), _u32(hi)
                r.var_off = Tnum.range(_u64(lo), _u64(hi))
                r.sync()
                return r.freeze()
        r.smin = r.s32_min = -half
        r.smax = r.s32_max = half - 1
        r.umin, r.umax = 0, U64_MAX
        r.u32_min, r.u32_max = 0, U32_MAX
        r.var_off = Tnum.unknown()
        r.sync()
        return r.freeze()

    def movsx32(self, size: int) -> ScalarBounds:
        """The low ``size`` bytes (1 or 2) sign-extended to 32 bits, then zero-extended."""
        r = _Reg(self)
        bits = 8 * size
        if self.var_off.is_const():
            v = _sext(self.var_off.value, size)
            r.var_off = Tnum.const(v)
            r.s32_min = r.s32_max = _s32(v)
            r.u32_min = r.u32_max = _u32(v)
            return self._finish(r, True)
        top_max = (_u32(self.s32_max) >> bits) << bits
        top_min = (_u32(self.s32_min) >> bits) << bits
        if top_max == top_min:
            lo = min(_sext(self.s32_min, size), _sext(self.s32_max, size))
            hi = max(_sext(self.s32_min, size), _sext(self.s32_max, size))
            if (lo >= 0) == (hi >= 0):
                r.s32_min, r.s32_max = lo, hi
                r.u32_min, r.u32_max = _u32(lo), _u32(hi)
                r.var_off = Tnum.range(_u64(lo), _u64(hi)).subreg()
                return self._finish(r, True)
        half = 1 << (bits - 1)
        r.s32_min, r.s32_max = -half, half - 1
        r.u32_min, r.u32_max = 0, U32_MAX
        r.var_off = Tnum.unknown()
        return self._finish(r, True)

    def bswap(self, bits: int) -> ScalarBounds:
        """Bytes of the low ``bits`` (16, 32, 64) reversed, higher bits cleared
        (``bswap16/32/64``, and ``be16/32/64`` on a little-endian machine)."""
        r = _Reg(self)
        r.var_off = self.var_off.bswap(bits)
        r.unbounded()
        if bits < 64:
            r.truncate(bits // 8)
        r.sync()
        return r.freeze()

    def to_le(self, bits: int) -> ScalarBounds:
        """``le16/32/64`` on a little-endian machine: the low ``bits`` zero-extended."""
        r = _Reg(self)
        if bits < 64:
            r.truncate(bits // 8)
        r.sync()
        return r.freeze()

    def to_be(self, bits: int) -> ScalarBounds:
        """``be16/32/64`` on a little-endian machine: a byte swap."""
        return self.bswap(bits)

    # ------------------------------------------------------------------ printing

    def format(self, *, id: int = 0, delta: int | None = None, precise: bool = False) -> str:
        """The kernel log's text for a scalar register in this state.

        ``id`` (and a linked-register ``delta``) and the ``P`` mark of a precise
        register belong to the register, not the value, so they are parameters.
        """
        out = "P" if precise else ""
        if self.var_off.is_const():
            return out + format_signed(self.var_off.value)
        parts: list[str] = []
        if id:
            parts.append(f"id={id}" + ("" if delta is None else f"{delta:+d}"))
        ranges = _format_ranges(self)
        if ranges:
            parts.append(ranges)
        if not self.var_off.is_unknown():
            parts.append(f"var_off={self.var_off}")
        return out + "scalar(" + ",".join(parts) + ")"

    def __str__(self) -> str:
        return self.format()

    def describe(self) -> str:
        """All nine fields, for debugging."""
        return (f"var_off={self.var_off} u64=[{self.umin:#x}, {self.umax:#x}] s64=[{self.smin}, {self.smax}] "
                f"u32=[{self.u32_min:#x}, {self.u32_max:#x}] s32=[{self.s32_min}, {self.s32_max}]")


def _format_ranges(b: ScalarBounds) -> str:
    """The kernel's print_scalar_ranges: defaults omitted, equal values grouped (``smax=umax=255``)."""
    def s32_shown(v: int) -> int:
        # signed 32-bit bounds print sign-extended only when they print in decimal
        return v if -0x8000 <= v <= 0x7FFF else _u32(v)

    entries = [
        ["smin", _u64(b.smin), b.smin == S64_MIN],
        ["smax", _u64(b.smax), b.smax == S64_MAX],
        ["umin", b.umin, b.umin == 0],
        ["umax", b.umax, b.umax == U64_MAX],
        ["smin32", _u64(s32_shown(b.s32_min)), b.s32_min == S32_MIN],
        ["smax32", _u64(s32_shown(b.s32_max)), b.s32_max == S32_MAX],
        ["umin32", b.u32_min, b.u32_min == 0],
        ["umax32", b.u32_max, b.u32_max == U32_MAX],
    ]
    out: list[str] = []
    for i, (name, val, omit) in enumerate(entries):
        if omit:
            continue
        signed = name[0] == "s"
        negative = signed and val >> 63 == 1
        names = [name]
        for j in range(i + 2, len(entries), 2):
            other = entries[j]
            if other[2] or other[1] != val:
                continue
            if (other[0][0] == "s" and other[1] >> 63 == 1) != negative:
                continue
            other[2] = True
            names.append(other[0])
        out.append("=".join(names) + "=" + (format_signed(val) if signed else format_unsigned(val)))
    return ",".join(out)


_UNKNOWN = ScalarBounds(Tnum.unknown(), S64_MIN, S64_MAX, 0, U64_MAX, S32_MIN, S32_MAX, 0, U32_MAX)
