"""Tracked numbers: which bits of a 64-bit value are known, and to what.

A :class:`Tnum` is a pair ``(value, mask)`` of 64-bit unsigned integers.  A bit
set in ``mask`` is *unknown*; every other bit is known and equals the
corresponding bit of ``value`` (so ``value & mask == 0`` always).  The tnum
stands for the set of all 64-bit integers that agree with ``value`` on the
known bits::

    Tnum(0b0100, 0b0011)  ==  {0b0100, 0b0101, 0b0110, 0b0111}

Every operation returns a tnum containing every result of applying the
operation to members of the inputs (it is *sound*); most are also as small as
a tnum can be.  Integers are Python ints in ``0 .. 2**64-1``; signed views
(``smin``, ``arshift``) interpret bit 63 as the sign.  Helpers with ``32`` or
``subreg`` in the name look at the low 32 bits only.

This is the abstract domain of the Linux eBPF verifier (``kernel/bpf/tnum.c``)
written from its semantics; :meth:`Tnum.__str__` prints like the kernel,
``(0x0; 0xff)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tnum", "MASK64", "MASK32"]

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
_SIGN64 = 1 << 63
_SIGN32 = 1 << 31


def _s64(x: int) -> int:
    x &= MASK64
    return x - (1 << 64) if x & _SIGN64 else x


def _s32(x: int) -> int:
    x &= MASK32
    return x - (1 << 32) if x & _SIGN32 else x


def _swap_bytes(x: int, nbytes: int) -> int:
    """Reverse the low ``nbytes`` bytes of ``x`` (higher bytes are dropped)."""
    return int.from_bytes((x & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


@dataclass(frozen=True, slots=True)
class Tnum:
    """A set of 64-bit integers given by known bits (``value``) and unknown bits (``mask``)."""

    value: int
    mask: int

    def __post_init__(self) -> None:
        if not (0 <= self.value <= MASK64 and 0 <= self.mask <= MASK64):
            raise ValueError(f"tnum fields must be unsigned 64-bit integers: ({self.value:#x}; {self.mask:#x})")
        if self.value & self.mask:
            raise ValueError(f"tnum value and mask overlap: ({self.value:#x}; {self.mask:#x})")

    # ------------------------------------------------------------------ constructors

    @staticmethod
    def const(value: int) -> Tnum:
        """The single value ``value`` (taken modulo 2**64)."""
        return Tnum(value & MASK64, 0)

    @staticmethod
    def unknown() -> Tnum:
        """Every 64-bit value."""
        return _UNKNOWN

    @staticmethod
    def range(umin: int, umax: int) -> Tnum:
        """The smallest tnum holding every value of the unsigned range ``[umin, umax]``.

        All bits from the highest bit in which ``umin`` and ``umax`` differ down
        are unknown; the bits above are the common prefix.
        """
        umin &= MASK64
        umax &= MASK64
        differing = (umin ^ umax).bit_length()
        if differing >= 64:
            return _UNKNOWN
        low = (1 << differing) - 1
        return Tnum(umin & ~low & MASK64, low)

    # ------------------------------------------------------------------ queries

    def is_const(self) -> bool:
        return self.mask == 0

    def is_unknown(self) -> bool:
        return self.mask == MASK64

    def equals_const(self, value: int) -> bool:
        return self.mask == 0 and self.value == value & MASK64

    def contains(self, value: int) -> bool:
        """Whether the 64-bit value ``value`` (taken modulo 2**64) is a member."""
        return (value & MASK64 & ~self.mask) == self.value

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.contains(value)

    def is_subset_of(self, other: Tnum) -> bool:
        """Every member of ``self`` is a member of ``other`` (the kernel's ``tnum_in(other, self)``)."""
        if self.mask & ~other.mask:
            return False
        return (self.value & ~other.mask) == other.value

    def overlaps(self, other: Tnum) -> bool:
        """Whether the two sets share a member: the bits known in both agree."""
        return ((self.value ^ other.value) & ~(self.mask | other.mask) & MASK64) == 0

    def is_aligned(self, size: int) -> bool:
        """Every member is a multiple of ``size`` (a power of two; 0 means no requirement)."""
        if not size:
            return True
        return not ((self.value | self.mask) & (size - 1))

    @property
    def umin(self) -> int:
        """Smallest member, unsigned."""
        return self.value

    @property
    def umax(self) -> int:
        """Largest member, unsigned."""
        return self.value | self.mask

    @property
    def smin(self) -> int:
        """Smallest member as a signed 64-bit integer (sign bit set if it may be)."""
        return _s64(self.value | (self.mask & _SIGN64))

    @property
    def smax(self) -> int:
        """Largest member as a signed 64-bit integer (sign bit clear if it may be)."""
        return _s64(self.value | (self.mask & (_SIGN64 - 1)))

    def next_after(self, z: int) -> int:
        """The smallest member greater than ``z``, or :attr:`umax` if there is none.

        (``t.next_after(t.value - 1)`` is ``t.value`` for any ``t``.)
        """
        top = self.value | self.mask
        if z >= top:
            return top
        if z < self.value:
            return self.value
        x = z + 1
        diff = (x ^ self.value) & ~self.mask
        if not diff:
            return x
        h = diff.bit_length() - 1          # highest fixed bit where x disagrees
        low = (1 << (h + 1)) - 1
        if self.value >> h & 1:
            # x has 0 where a 1 is required: keep the prefix, set bit h, minimal below
            return (x & ~low) | (self.value & low)
        # x has 1 where a 0 is required: the prefix above h must grow to its next member
        prefix = Tnum(self.value >> (h + 1), self.mask >> (h + 1))
        free = prefix.mask
        p = (((x >> (h + 1)) | (~free & (MASK64 >> (h + 1)))) + 1) & free | prefix.value
        return (p << (h + 1)) | (self.value & low)

    def members(self, limit: int = 1 << 16) -> list[int]:
        """All members in increasing order (for tests; refuses more than ``limit``)."""
        count = 1 << self.mask.bit_count()
        if count > limit:
            raise ValueError(f"tnum has {count} members, more than {limit}")
        bits = [1 << i for i in range(64) if self.mask >> i & 1]
        out = []
        for n in range(count):
            v = self.value
            for i, bit in enumerate(bits):
                if n >> i & 1:
                    v |= bit
            out.append(v)
        return sorted(out)

    # ------------------------------------------------------------------ arithmetic

    def add(self, other: Tnum) -> Tnum:
        """Sum modulo 2**64.

        Add the known parts and, separately, the known parts plus all unknown
        bits set; any bit where the two sums differ may be affected by a carry
        out of an unknown bit, so it and every input-unknown bit is unknown.
        """
        sum_masks = self.mask + other.mask
        sum_values = self.value + other.value
        carries = ((sum_values + sum_masks) ^ sum_values) & MASK64
        unknown = carries | self.mask | other.mask
        return Tnum(sum_values & ~unknown & MASK64, unknown)

    def sub(self, other: Tnum) -> Tnum:
        """Difference modulo 2**64 (borrows treated like the carries of :meth:`add`)."""
        diff = self.value - other.value
        highest = diff + self.mask
        lowest = diff - other.mask
        unknown = ((highest ^ lowest) | self.mask | other.mask) & MASK64
        return Tnum(diff & ~unknown & MASK64, unknown)

    def neg(self) -> Tnum:
        """Two's complement negation, ``0 - self``."""
        return _ZERO.sub(self)

    def mul(self, other: Tnum) -> Tnum:
        """Product modulo 2**64, by shift-and-add over the bits of ``self``.

        A known 1 bit adds the (shifted) ``other``; an unknown bit takes the
        union of adding and not adding it.  (Not commutative in precision: the
        Linux 6.18 verifier multiplies ``dst.mul(src)``.)
        """
        a, b = self, other
        acc = _ZERO
        while a.value or a.mask:
            if a.value & 1:
                acc = acc.add(b)
            elif a.mask & 1:
                acc = acc.union(acc.add(b))
            a = a.rshift(1)
            b = b.lshift(1)
        return acc

    def and_(self, other: Tnum) -> Tnum:
        may_be_one = (self.value | self.mask) & (other.value | other.mask)
        known_one = self.value & other.value
        return Tnum(known_one, may_be_one & ~known_one)

    def or_(self, other: Tnum) -> Tnum:
        known_one = self.value | other.value
        return Tnum(known_one, (self.mask | other.mask) & ~known_one & MASK64)

    def xor(self, other: Tnum) -> Tnum:
        unknown = self.mask | other.mask
        return Tnum((self.value ^ other.value) & ~unknown & MASK64, unknown)

    def lshift(self, shift: int) -> Tnum:
        """Left shift by a known amount (0..63), bits beyond 64 dropped."""
        return Tnum((self.value << shift) & MASK64, (self.mask << shift) & MASK64)

    def rshift(self, shift: int) -> Tnum:
        """Logical right shift by a known amount (0..63)."""
        return Tnum(self.value >> shift, self.mask >> shift)

    def arshift(self, shift: int, bits: int = 64) -> Tnum:
        """Arithmetic right shift by a known amount of a ``bits``-wide (64 or 32) value.

        For ``bits=32`` only the low 32 bits are shifted (with bit 31 as the
        sign) and the result is zero-extended, like a 32-bit ALU operation.
        """
        if bits == 32:
            return Tnum((_s32(self.value) >> shift) & MASK32, (_s32(self.mask) >> shift) & MASK32)
        return Tnum((_s64(self.value) >> shift) & MASK64, (_s64(self.mask) >> shift) & MASK64)

    # ------------------------------------------------------------------ lattice

    def intersect(self, other: Tnum) -> Tnum:
        """Members of both (where the inputs disagree on a known bit the result says 1)."""
        known_one = self.value | other.value
        unknown = self.mask & other.mask
        return Tnum(known_one & ~unknown, unknown)

    def union(self, other: Tnum) -> Tnum:
        """The smallest tnum holding the members of both."""
        unknown = (self.value ^ other.value) | self.mask | other.mask
        return Tnum(self.value & other.value & ~unknown, unknown)

    # ------------------------------------------------------------------ widths

    def cast(self, size: int) -> Tnum:
        """Keep the low ``size`` bytes (1, 2, 4 or 8): zero-extending truncation."""
        keep = (1 << (8 * size)) - 1
        return Tnum(self.value & keep, self.mask & keep)

    def subreg(self) -> Tnum:
        """The low 32 bits, zero-extended."""
        return Tnum(self.value & MASK32, self.mask & MASK32)

    def clear_subreg(self) -> Tnum:
        """The high 32 bits, low 32 bits known zero."""
        return Tnum(self.value & ~MASK32 & MASK64, self.mask & ~MASK32 & MASK64)

    def with_subreg(self, subreg: Tnum) -> Tnum:
        """The high 32 bits of ``self`` with the low 32 bits of ``subreg``."""
        return self.clear_subreg().or_(subreg.subreg())

    def with_const_subreg(self, value: int) -> Tnum:
        return self.with_subreg(Tnum.const(value & MASK32))

    def is_subreg_const(self) -> bool:
        return not self.mask & MASK32

    def bswap(self, bits: int) -> Tnum:
        """Reverse the bytes of the low ``bits`` (16, 32 or 64) bits; higher bits become 0."""
        n = bits // 8
        return Tnum(_swap_bytes(self.value, n), _swap_bytes(self.mask, n))

    # ------------------------------------------------------------------ printing

    def __str__(self) -> str:
        """The kernel's ``var_off`` text: ``(0x0; 0xff)``."""
        return f"({self.value:#x}; {self.mask:#x})"

    def kernel_str(self) -> str:
        """Like the kernel's tnum_strn: a constant prints as its value (decimal up to 0xffff)."""
        if self.mask == 0:
            return str(self.value) if self.value <= 0xFFFF else f"{self.value:#x}"
        return str(self)

    def binary(self) -> str:
        """64 characters, most significant first: ``0``, ``1`` or ``x`` (unknown)."""
        return "".join("x" if self.mask >> i & 1 else str(self.value >> i & 1) for i in range(63, -1, -1))

    # ------------------------------------------------------------------ operators

    __add__ = add
    __sub__ = sub
    __mul__ = mul
    __and__ = and_
    __or__ = or_
    __xor__ = xor
    __neg__ = neg
    __lshift__ = lshift
    __rshift__ = rshift


_UNKNOWN = Tnum(0, MASK64)
_ZERO = Tnum(0, 0)
