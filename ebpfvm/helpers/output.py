"""Output helpers that hand data to user space: ringbuf_output/reserve/submit/discard/query and perf_event_output.

Placeholder: the implementations are being written (issue 4).
"""

from __future__ import annotations

from .registry import HelperRegistry


def register(registry: HelperRegistry) -> HelperRegistry:
    return registry
