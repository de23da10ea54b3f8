"""Reads of arbitrary memory: probe_read_kernel/user and their _str variants.

Placeholder: the implementations are being written (issue 4).
"""

from __future__ import annotations

from .registry import HelperRegistry


def register(registry: HelperRegistry) -> HelperRegistry:
    return registry
