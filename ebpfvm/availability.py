"""``Availability``: whether an optional engine or facility can be used here, and why not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Availability:
    """Truthy when usable; otherwise ``reason`` says why (shown in skips)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok
