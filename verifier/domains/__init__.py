"""Abstract domains for scalar values: pure arithmetic on sets of 64-bit integers.

Nothing here knows about instructions or registers; the transfer layer maps
each opcode to one of these operations.

* :class:`Tnum` — known and unknown bits of a 64-bit value (``tnum``).
* :class:`ScalarBounds` — a tnum plus signed/unsigned ranges of the value and
  of its low 32 bits, kept in agreement by :meth:`ScalarBounds.sync`; one
  method per arithmetic operation (``add``, ``add32``, ``lsh``, ``movsx`` ...),
  ``join``/``is_subset_of`` for merging and pruning, kernel-log printing.
* :func:`branch_taken` / :func:`refine` with :class:`Cmp` — what a comparison
  between two such values decides and teaches.

The rules are those of the Linux 6.18 eBPF verifier, so states print and
prune like the kernel's.
"""

from .bounds import (S32_MAX, S32_MIN, S64_MAX, S64_MIN, U32_MAX, U64_MAX, ScalarBounds, format_signed,
                     format_unsigned)
from .branches import Cmp, branch_taken, negate, refine, swap
from .tnum import MASK32, MASK64, Tnum

__all__ = [
    "Cmp", "MASK32", "MASK64", "S32_MAX", "S32_MIN", "S64_MAX", "S64_MIN", "ScalarBounds", "Tnum", "U32_MAX",
    "U64_MAX", "branch_taken", "format_signed", "format_unsigned", "negate", "refine", "swap",
]
