"""bpf_spin_lock / bpf_spin_unlock.

A run is single-threaded, so taking a lock has nothing to wait for and the
helpers leave memory alone. What they do is check the discipline the
verifier enforces, so a program the kernel would reject does not pass
silently here:

* the lock is a 4-byte aligned word inside a map value;
* a program holds at most one lock at a time;
* it unlocks only the lock it holds;
* it does not exit holding it (``check_released``, for the runtime to call
  after a run: the helpers cannot see the exit).

Each breach is a ``SpinLockFault`` subclass. The held lock is per run
(``env.held_lock``, cleared by ``HelperEnv.begin_run``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ProgramFault
from ..memory import CODE_BASE, MAP_VALUE_BASE
from .prototype import ArgKind, Prototype, RetKind
from .registry import HelperRegistry

if TYPE_CHECKING:
    from ..interp.machine import Machine

BPF_SPIN_LOCK = 93
BPF_SPIN_UNLOCK = 94

LOCK_SIZE = 4  # struct bpf_spin_lock { __u32 val; }


class SpinLockFault(ProgramFault):
    """Misuse of bpf_spin_lock / bpf_spin_unlock that the verifier rejects."""

    def __init__(self, message: str, pc: int, address: int) -> None:
        self.address = address
        super().__init__(message, pc)


class LockNotInMapValue(SpinLockFault):
    def __init__(self, pc: int, address: int) -> None:
        super().__init__(f"bpf_spin_lock at {address:#x} is not an aligned word of a map value", pc, address)


class LockAlreadyHeld(SpinLockFault):
    """A second bpf_spin_lock while one is held (the same or another)."""

    def __init__(self, pc: int, address: int, held: int) -> None:
        self.held = held
        super().__init__(f"bpf_spin_lock of {address:#x} while holding {held:#x}: "
                         f"only one lock may be held", pc, address)


class LockNotHeld(SpinLockFault):
    def __init__(self, pc: int, address: int) -> None:
        super().__init__(f"bpf_spin_unlock of {address:#x} without taking a lock", pc, address)


class UnlockOfDifferentLock(SpinLockFault):
    def __init__(self, pc: int, address: int, held: int) -> None:
        self.held = held
        super().__init__(f"bpf_spin_unlock of {address:#x} but {held:#x} is held", pc, address)


class LockHeldAtExit(SpinLockFault):
    def __init__(self, pc: int, address: int) -> None:
        super().__init__(f"program exited holding bpf_spin_lock {address:#x}", pc, address)


def _check_lock_word(machine: "Machine", address: int) -> None:
    in_map_windows = MAP_VALUE_BASE <= address < CODE_BASE
    if not in_map_windows or address % LOCK_SIZE or machine.memory.find(address, LOCK_SIZE) is None:
        raise LockNotInMapValue(machine.pc, address)


def spin_lock(machine: "Machine", lock: int, r2: int, r3: int, r4: int, r5: int) -> int:
    _check_lock_word(machine, lock)
    env = machine.env
    if env.held_lock is not None:
        raise LockAlreadyHeld(machine.pc, lock, env.held_lock)
    env.held_lock = lock
    return 0


def spin_unlock(machine: "Machine", lock: int, r2: int, r3: int, r4: int, r5: int) -> int:
    _check_lock_word(machine, lock)
    env = machine.env
    if env.held_lock is None:
        raise LockNotHeld(machine.pc, lock)
    if env.held_lock != lock:
        raise UnlockOfDifferentLock(machine.pc, lock, env.held_lock)
    env.held_lock = None
    return 0


def check_released(machine: "Machine") -> None:
    """Raise ``LockHeldAtExit`` if the run that just ended kept a lock."""
    if machine.env.held_lock is not None:
        raise LockHeldAtExit(machine.pc, machine.env.held_lock)


# kernel/bpf/helpers.c: RET_VOID, one ARG_PTR_TO_SPIN_LOCK; not GPL only.
SPIN_LOCK_PROTO = Prototype(RetKind.VOID, (ArgKind.PTR_TO_SPIN_LOCK,))


def register(registry: HelperRegistry) -> HelperRegistry:
    registry.register(BPF_SPIN_LOCK, spin_lock, proto=SPIN_LOCK_PROTO)
    registry.register(BPF_SPIN_UNLOCK, spin_unlock, proto=SPIN_LOCK_PROTO)
    return registry
