"""How many generated programs the differential tests try.

CI runs the numbers written in the tests; ``EBPFVM_FUZZ_SCALE=N`` multiplies
them for a local fuzzing session (e.g. ``EBPFVM_FUZZ_SCALE=50 pytest
tests/test_differential_kernel.py``).
"""

from __future__ import annotations

import os


def examples(ci_count: int) -> int:
    try:
        scale = max(1, int(os.environ.get("EBPFVM_FUZZ_SCALE", "1")))
    except ValueError:
        scale = 1
    return ci_count * scale
