"""Map element helpers: map_lookup_elem, map_update_elem, map_delete_elem, map_push_elem, map_pop_elem, map_peek_elem.

Placeholder: the implementations are being written (issue 4).
"""

from __future__ import annotations

from .registry import HelperRegistry


def register(registry: HelperRegistry) -> HelperRegistry:
    return registry
