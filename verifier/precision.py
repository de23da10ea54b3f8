"""Which stack slots a check needed exactly (for ``widen_imprecise_scalars``).

A scalar carries ``origin``: the stack slots ``(subprog, frameno, slot)``
its value was computed from (a fill from the stack starts it, arithmetic
joins its operands').  A use that needs the exact value (pointer
arithmetic, a branch whose outcome the value decides, a helper's size
argument, a return value...) makes those slots precise in
``env.precise_slots``; :mod:`.callbacks` widens only the others.
"""

from __future__ import annotations

from dataclasses import replace

from .state import Reg, scalar


def loaded_from(reg: Reg, key: tuple) -> Reg:
    """``reg`` as filled from stack slot ``key``."""
    if not reg.is_scalar:
        return reg
    return replace(reg, origin=reg.origin | {key})


def derived(var, *operands: Reg) -> Reg:
    """A scalar with bounds ``var`` computed from ``operands``."""
    origin = frozenset()
    for reg in operands:
        if reg is not None and reg.is_scalar:
            origin |= reg.origin
    result = scalar(var)
    return replace(result, origin=origin) if origin else result


def demand_precision(env, *regs: Reg) -> None:
    """A check needed these registers' exact values: their slots are precise."""
    for reg in regs:
        if reg is not None and reg.is_scalar and reg.origin:
            env.precise_slots.update(reg.origin)


def demand_slot(env, key: tuple) -> None:
    """A check needed stack slot ``key``'s exact value."""
    env.precise_slots.add(key)
