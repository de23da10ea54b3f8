"""Formatted output: trace_printk (captured as the kernel formats it) and snprintf.

Placeholder: the implementations are being written (issue 4).
"""

from __future__ import annotations

from .registry import HelperRegistry


def register(registry: HelperRegistry) -> HelperRegistry:
    return registry
