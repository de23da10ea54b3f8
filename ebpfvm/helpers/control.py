"""Helpers that transfer control: tail_call, loop (bpf_loop), for_each_map_elem.

Placeholder: the implementations are being written (issue 4).
"""

from __future__ import annotations

from .registry import HelperRegistry


def register(registry: HelperRegistry) -> HelperRegistry:
    return registry
