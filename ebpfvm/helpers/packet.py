"""Packet helpers: xdp_adjust_head/tail/meta, skb_load_bytes, skb_store_bytes, l3/l4_csum_replace, csum_diff, redirect, redirect_map.

Placeholder: the implementations are being written (issue 4).
"""

from __future__ import annotations

from .registry import HelperRegistry


def register(registry: HelperRegistry) -> HelperRegistry:
    return registry
