"""The world outside the program that helpers observe: clock, randomness, CPU.

Injectable so runs are reproducible: tests pass a fake clock and a seed, the
interpreter and the JIT given the same ``HelperEnv`` see the same values.
"""

from __future__ import annotations

import random
import time
from typing import Callable


class HelperEnv:
    """Per-run state of the helpers that need no maps.

    ``clock`` returns monotonic nanoseconds (``bpf_ktime_get_ns``); ``seed``
    seeds ``bpf_get_prandom_u32`` (None: unpredictable); ``cpu_id`` is what
    ``bpf_get_smp_processor_id`` reports.
    """

    def __init__(self, *, clock: Callable[[], int] = time.monotonic_ns, seed: int | None = None,
                 cpu_id: int = 0) -> None:
        self.clock = clock
        self.seed = seed
        self.random = random.Random(seed)
        self.cpu_id = cpu_id


class StepClock:
    """A fake monotonic clock: ``start``, then ``step`` more on every reading."""

    def __init__(self, start: int = 0, step: int = 1) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        value = self.now
        self.now += self.step
        return value
