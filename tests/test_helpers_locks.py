"""bpf_spin_lock / bpf_spin_unlock: no-ops that fault where the verifier
would reject the program."""

from __future__ import annotations

import pytest
from helpers_support import run_with_values

from ebpfvm import assemble
from ebpfvm.errors import ProgramFault
from ebpfvm.helpers import ArgKind, HelperEnv, RetKind, default_registry
from ebpfvm.helpers.locks import (LockAlreadyHeld, LockHeldAtExit, LockNotHeld, LockNotInMapValue,
                                  SpinLockFault, UnlockOfDifferentLock, check_released, spin_lock, spin_unlock)
from ebpfvm.memory import MemoryMap, map_window, stack_frame_base

VALUE = map_window(0)  # map 0's value: a counter, then the lock word at offset 8


class Machine:
    """What the lock helpers look at: memory, env and the pc."""

    def __init__(self) -> None:
        self.memory = MemoryMap()
        self.memory.add_region("map 0 value", VALUE, 16)
        self.memory.add_region("stack frame 0", stack_frame_base(0), 512)
        self.env = HelperEnv()
        self.pc = 7


def test_lock_then_unlock() -> None:
    m = Machine()
    assert spin_lock(m, VALUE + 8, 0, 0, 0, 0) == 0
    assert m.env.held_lock == VALUE + 8
    assert spin_unlock(m, VALUE + 8, 0, 0, 0, 0) == 0
    assert m.env.held_lock is None
    check_released(m)  # nothing held
    assert bytes(m.memory.region("map 0 value").data) == bytes(16)  # the lock word is left alone


def test_locking_twice_faults() -> None:
    m = Machine()
    spin_lock(m, VALUE + 8, 0, 0, 0, 0)
    with pytest.raises(LockAlreadyHeld) as info:
        spin_lock(m, VALUE + 8, 0, 0, 0, 0)
    assert (info.value.pc, info.value.address, info.value.held) == (7, VALUE + 8, VALUE + 8)
    with pytest.raises(LockAlreadyHeld):
        spin_lock(m, VALUE + 4, 0, 0, 0, 0)  # another lock: only one may be held


def test_unlock_without_lock_faults() -> None:
    with pytest.raises(LockNotHeld) as info:
        spin_unlock(Machine(), VALUE + 8, 0, 0, 0, 0)
    assert info.value.address == VALUE + 8
    assert "without taking a lock" in str(info.value)


def test_unlock_of_another_lock_faults() -> None:
    m = Machine()
    spin_lock(m, VALUE + 8, 0, 0, 0, 0)
    with pytest.raises(UnlockOfDifferentLock) as info:
        spin_unlock(m, VALUE + 4, 0, 0, 0, 0)
    assert (info.value.address, info.value.held) == (VALUE + 4, VALUE + 8)


@pytest.mark.parametrize("address", [
    stack_frame_base(0) + 8,   # the stack is no map value
    VALUE + 6,                 # not aligned
    VALUE + 14,                # would run past the value
    VALUE + 0x100,             # inside the map's window but not mapped
    0,
])
def test_lock_must_be_an_aligned_word_of_a_map_value(address: int) -> None:
    with pytest.raises(LockNotInMapValue) as info:
        spin_lock(Machine(), address, 0, 0, 0, 0)
    assert info.value.address == address
    with pytest.raises(LockNotInMapValue):
        spin_unlock(Machine(), address, 0, 0, 0, 0)


def test_exit_with_lock_held() -> None:
    m = Machine()
    spin_lock(m, VALUE + 8, 0, 0, 0, 0)
    with pytest.raises(LockHeldAtExit):
        check_released(m)


def test_faults_are_program_faults_with_data() -> None:
    for cls in (LockAlreadyHeld, LockNotHeld, UnlockOfDifferentLock, LockNotInMapValue, LockHeldAtExit):
        assert issubclass(cls, SpinLockFault) and issubclass(cls, ProgramFault)


# -- in a program --------------------------------------------------------------------------------------

_LOCKED_INCREMENT = assemble("""
    lddw %r6, map_value 0, 0
    mov %r1, %r6
    add %r1, 8
    call bpf_spin_lock
    ldxdw %r0, [%r6]
    add %r0, 1
    stxdw [%r6], %r0
    mov %r1, %r6
    add %r1, 8
    call bpf_spin_unlock
    ldxdw %r0, [%r6]
    exit""")


def test_locked_increment_runs_and_repeats() -> None:
    result, values = run_with_values(_LOCKED_INCREMENT, [bytes(16)], HelperEnv(), runs=3)
    assert result.r0 == 3
    assert values[0][:8] == (3).to_bytes(8, "little")


def test_a_lock_left_by_a_faulting_run_does_not_leak_into_the_next() -> None:
    # Lock, then read a NULL pointer: the run faults with the lock held.
    program = assemble("""
        lddw %r1, map_value 0, 8
        call bpf_spin_lock
        mov %r2, 0
        ldxdw %r0, [%r2]
        exit""")
    env = HelperEnv()
    with pytest.raises(ProgramFault):
        run_with_values(program, [bytes(16)], env)
    assert env.held_lock is not None
    result, _ = run_with_values(_LOCKED_INCREMENT, [bytes(16)], env)  # begin_run forgot it
    assert result.r0 == 1


def test_double_lock_in_a_program() -> None:
    program = assemble("""
        lddw %r1, map_value 0, 8
        call bpf_spin_lock
        lddw %r1, map_value 0, 8
        call bpf_spin_lock
        exit""")
    with pytest.raises(LockAlreadyHeld) as info:
        run_with_values(program, [bytes(16)], HelperEnv())
    assert info.value.pc == 5


def test_prototypes_follow_the_kernel() -> None:
    registry = default_registry()
    for helper_id, name in ((93, "bpf_spin_lock"), (94, "bpf_spin_unlock")):
        helper = registry[helper_id]
        assert helper.name == name
        assert helper.proto.ret == RetKind.VOID
        assert helper.proto.args == (ArgKind.PTR_TO_SPIN_LOCK,)
        assert not helper.proto.gpl_only
