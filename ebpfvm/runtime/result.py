"""What one run of a program by the runtime produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..interp.trace import TraceEntry


@dataclass(frozen=True)
class Redirect:
    """Where bpf_redirect / bpf_redirect_map sent the packet (the kernel acts
    on it after the program returns XDP_REDIRECT / TC_ACT_REDIRECT)."""

    ifindex: int
    flags: int = 0
    map: str | None = None  # the map of bpf_redirect_map, whose key is ``ifindex``


@dataclass(frozen=True)
class ProgramRun:
    """The outcome of ``Runtime.run``.

    ``r0``: the return value (unsigned 64-bit; the kernel hands the low 32
    bits to its caller). ``action``: its name for XDP and tc programs
    ("XDP_PASS", "TC_ACT_SHOT", ...), else None. ``packet``: the packet after
    the run, from the first byte the input had (an L3 program's hidden
    Ethernet header included) to ``data_end``, None without a packet;
    ``meta``: XDP metadata in front of it (the kernel's test run returns
    ``meta + packet``). ``ctx``: the context struct after the run (packet
    pointer fields as offsets from ``data_meta``). ``trace``: the lines
    bpf_trace_printk wrote. ``ringbuf_events`` / ``perf_events``: records
    each ring buffer / perf event array received, by map name.
    ``executed``: instructions executed (lddw once; callbacks and tail-called
    programs included). ``tail_calls``: tail calls taken. ``program``: the
    name of the program that returned (after tail calls). ``redirect``: the
    last redirect target set. ``steps``: the instruction trace when asked for.
    """

    r0: int
    action: str | None
    packet: bytes | None
    ctx: bytes
    executed: int
    meta: bytes = b""
    trace: list[str] = field(default_factory=list)
    ringbuf_events: dict[str, list[Any]] = field(default_factory=dict)
    perf_events: dict[str, list[Any]] = field(default_factory=dict)
    tail_calls: int = 0
    program: str = ""
    redirect: Redirect | None = None
    steps: list[TraceEntry] | None = None

    @property
    def retval(self) -> int:
        """r0 as BPF_PROG_TEST_RUN reports it (a u32)."""
        return self.r0 & 0xFFFF_FFFF
