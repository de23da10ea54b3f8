"""Program types: context layouts and access rules, the kernel's rewrite of
context fields, allowed helpers, return values, and how a test run presents
packets and contexts. One module per family (``xdp``, ``skb``, ``tracing``);
``base`` holds the shared vocabulary.

    from ebpfvm.progtypes import get_prog_type
    xdp = get_prog_type("xdp")
    xdp.context.check(offset=0, size=4, write=False)      # -> CtxField data
"""

from __future__ import annotations

from ..errors import UserInputError
from .base import (ContextAccessError, ContextInputError, ContextLayout, ContextSetup, CtxField, FieldKind,
                   PacketLayout, ProgType)
from .skb import CGROUP_SKB, SCHED_ACT, SCHED_CLS, SOCKET_FILTER
from .tracing import KPROBE, RAW_TRACEPOINT, TRACEPOINT
from .xdp import XDP

PROG_TYPES: tuple[ProgType, ...] = (SOCKET_FILTER, SCHED_CLS, SCHED_ACT, CGROUP_SKB, XDP, KPROBE, TRACEPOINT,
                                    RAW_TRACEPOINT)
_BY_NAME = {name: t for t in PROG_TYPES for name in (t.name, *t.aliases)}


class UnknownProgType(UserInputError):
    """A program type name the runtime does not model."""

    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(t.name for t in PROG_TYPES)
        super().__init__(f"program type {name!r} is not supported (known: {known})")


def get_prog_type(name: str) -> ProgType:
    """The program type of a kernel name ("xdp", "sched_cls", ...) or alias
    ("tc", "socket", "raw_tp", ...)."""
    found = _BY_NAME.get(name.lower().removeprefix("bpf_prog_type_"))
    if found is None:
        raise UnknownProgType(name)
    return found


__all__ = [
    "ContextAccessError", "ContextInputError", "ContextLayout", "ContextSetup", "CtxField", "FieldKind",
    "PROG_TYPES", "PacketLayout", "ProgType", "UnknownProgType", "get_prog_type",
]
