"""The registry a run uses when it is given none: every helper group's ``register``."""

from __future__ import annotations

from . import basic, control, locks, maps, output, packet, probe, process, strings, trace
from .registry import HelperRegistry

_GROUPS = (basic, maps, output, process, trace, probe, strings, locks, packet, control)
_DEFAULT: HelperRegistry | None = None


def default_registry() -> HelperRegistry:
    """A fresh registry with every helper ebpfvm implements (safe to extend)."""
    registry = HelperRegistry()
    for group in _GROUPS:
        group.register(registry)
    return registry


def shared_default_registry() -> HelperRegistry:
    """The process-wide registry ``run`` uses when given none, built on first
    use. Do not mutate it: extend a fresh ``default_registry()`` instead."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = default_registry()
    return _DEFAULT
