"""Helpers that need no maps: time, randomness, CPU id (kernel ids and semantics).

Their state lives in the run's ``HelperEnv`` (``machine.env``) so that runs are
reproducible with a fake clock and a seed.
"""

from __future__ import annotations

from typing import Any

from .prototype import Prototype, RetKind
from .registry import HelperRegistry

BPF_KTIME_GET_NS = 5
BPF_GET_PRANDOM_U32 = 7
BPF_GET_SMP_PROCESSOR_ID = 8

_NO_ARGS = Prototype(RetKind.INTEGER, ())


def ktime_get_ns(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Monotonic time in nanoseconds (the kernel's CLOCK_MONOTONIC)."""
    return machine.env.clock()


def get_prandom_u32(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """A pseudo-random 32-bit number (not cryptographic, as in the kernel)."""
    return machine.env.random.getrandbits(32)


def get_smp_processor_id(machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The CPU the program runs on: the env's ``cpu_id``."""
    return machine.env.cpu_id


def register(registry: HelperRegistry) -> HelperRegistry:
    registry.register(BPF_KTIME_GET_NS, ktime_get_ns, proto=_NO_ARGS)
    registry.register(BPF_GET_PRANDOM_U32, get_prandom_u32, proto=_NO_ARGS)
    registry.register(BPF_GET_SMP_PROCESSOR_ID, get_smp_processor_id, proto=_NO_ARGS)
    return registry
