"""The helper registry: entries, names, prototypes, defaults, and the env."""

from __future__ import annotations

import pytest

from ebpfvm.helpers import (ArgKind, Helper, HelperEnv, HelperRegistry, Prototype, RetKind, StepClock,
                            default_registry, helper_name, shared_default_registry)


def test_default_registry_has_the_map_free_helpers() -> None:
    registry = default_registry()
    assert {5, 7, 8} <= {h.id for h in registry}  # other groups add the rest
    assert registry[5].name == "bpf_ktime_get_ns"
    assert registry[7].name == "bpf_get_prandom_u32"
    assert registry[8].name == "bpf_get_smp_processor_id"
    for helper_id in (5, 7, 8):
        assert registry[helper_id].proto == Prototype(RetKind.INTEGER, ())


class FakeMachine:
    def __init__(self, env: HelperEnv) -> None:
        self.env = env


def test_default_helpers_read_the_env() -> None:
    registry = default_registry()
    machine = FakeMachine(HelperEnv(clock=StepClock(100, 10), seed=1, cpu_id=2))
    assert [registry[5](machine, 0, 0, 0, 0, 0) for _ in range(3)] == [100, 110, 120]
    assert registry[8](machine, 0, 0, 0, 0, 0) == 2
    values = [registry[7](machine, 0, 0, 0, 0, 0) for _ in range(5)]
    again = FakeMachine(HelperEnv(seed=1))
    assert values == [registry[7](again, 0, 0, 0, 0, 0) for _ in range(5)]
    assert all(0 <= v < 2**32 for v in values)


def test_default_clock_is_monotonic_nanoseconds() -> None:
    machine = FakeMachine(HelperEnv())
    first = default_registry()[5](machine, 0, 0, 0, 0, 0)
    assert default_registry()[5](machine, 0, 0, 0, 0, 0) >= first > 0


def test_register_names_from_the_kernel_table() -> None:
    registry = HelperRegistry()
    helper = registry.register(1, lambda m, *a: 0)
    assert helper.name == helper_name(1) == "bpf_map_lookup_elem"
    assert registry.register(100_000, lambda m, *a: 0).name == "helper#100000"
    assert registry.register(100_001, lambda m, *a: 0, name="mine").name == "mine"


def test_duplicate_registration_needs_replace() -> None:
    registry = HelperRegistry()
    registry.register(5, lambda m, *a: 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(5, lambda m, *a: 2)
    registry.register(5, lambda m, *a: 2, replace=True)
    assert registry[5](None, 0, 0, 0, 0, 0) == 2


def test_decorator_and_lookup() -> None:
    registry = HelperRegistry()
    proto = Prototype(RetKind.INTEGER, (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE))

    @registry.implements(26, proto=proto)
    def load_bytes(machine, r1, r2, r3, r4, r5):
        return r1 + r2

    assert 26 in registry and 27 not in registry
    assert registry.get(27) is None
    assert registry.get(26).fn is load_bytes
    assert registry[26].proto.args == (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE)
    assert registry.remove(26).id == 26 and len(registry) == 0


def test_copies_are_independent() -> None:
    base = default_registry()
    extended = base.copy()
    extended.register(1000, lambda m, *a: 0, name="extra")
    assert 1000 in extended and 1000 not in base
    assert default_registry() is not default_registry()
    assert shared_default_registry() is shared_default_registry()


def test_prototype_limits_arguments() -> None:
    with pytest.raises(ValueError):
        Prototype(RetKind.INTEGER, (ArgKind.ANYTHING,) * 6)
    assert isinstance(Helper(1, "x", lambda m, *a: 0), Helper)
