"""Per-run state the runtime hangs on the machine (``machine.run_state``) for
helpers that need more than registers and memory: the program type, the
packet, tail calls taken so far, where a redirect points.

Helpers use it by duck typing (they never import the runtime), so a bare
``Interpreter`` run -- where ``run_state`` is None -- makes them fault with a
clear message instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..interp.ops import Op
from ..program import Program
from ..progtypes.base import ProgType
from .context import ContextAccess
from .packet import PacketBuffer
from .result import Redirect

if TYPE_CHECKING:
    from .runtime import Runtime


class RunState:
    """``prog_type``: None for a program without one (plain memory context).
    ``tail_calls``: taken so far (the kernel allows 33 per run)."""

    def __init__(self, runtime: "Runtime", prog_type: ProgType | None, packet: PacketBuffer | None,
                 context: ContextAccess | None, cpu: int) -> None:
        self.runtime = runtime
        self.prog_type = prog_type
        self.packet = packet
        self.context = context
        self.cpu = cpu
        self.tail_calls = 0
        self.redirect: Redirect | None = None

    @property
    def prog_type_name(self) -> str | None:
        return self.prog_type.name if self.prog_type is not None else None

    def set_redirect(self, ifindex: int, flags: int = 0, map_name: str | None = None) -> None:
        self.redirect = Redirect(ifindex, flags, map_name)

    def clear_redirect(self) -> None:
        self.redirect = None

    def program_code(self, slot: Any) -> tuple[Program, list[Op]] | None:
        """The program a prog_array slot refers to (a Program or a program
        name), decoded for this run's machine; None for an empty slot."""
        return self.runtime.tail_call_target(slot)
