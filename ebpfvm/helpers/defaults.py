"""The registry a run uses when it is given none."""

from __future__ import annotations

from .basic import register_basic
from .registry import HelperRegistry

_DEFAULT: HelperRegistry | None = None


def default_registry() -> HelperRegistry:
    """A fresh registry with every helper ebpfvm implements (safe to extend)."""
    return register_basic(HelperRegistry())


def shared_default_registry() -> HelperRegistry:
    """The process-wide registry ``run`` uses when given none, built on first
    use. Do not mutate it: extend a fresh ``default_registry()`` instead."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = default_registry()
    return _DEFAULT
