"""Simulated process and time state: get_current_pid_tgid, get_current_uid_gid, get_current_comm, ktime_get_boot_ns.

Placeholder: the implementations are being written (issue 4).
"""

from __future__ import annotations

from .registry import HelperRegistry


def register(registry: HelperRegistry) -> HelperRegistry:
    return registry
