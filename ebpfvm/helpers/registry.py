"""The helper registry: one entry per helper id, shared by interpreter, JIT and verifier.

An entry holds the id, the kernel's name, the prototype (for the verifier) and
the implementation ``fn(machine, r1, r2, r3, r4, r5) -> int``. ``machine`` is
the running ``ebpfvm.interp.Machine`` (its ``memory``, ``env``, ``pc``);
helpers that only compute ignore it. The returned value is taken modulo 2**64
into r0.

Registries are plain objects so each run can use its own
(``run(..., helpers=registry)``); ``default_registry()`` builds the standard one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .ids import HELPER_NAMES
from .prototype import UNKNOWN_PROTOTYPE, Prototype

if TYPE_CHECKING:
    from ..interp.machine import Machine

HelperFn = Callable[["Machine", int, int, int, int, int], int]


def helper_name(helper_id: int) -> str:
    """The kernel's name for ``helper_id`` (``bpf_...``), or ``helper#N`` for an
    id the kernel does not define (registries may hold such test helpers)."""
    return HELPER_NAMES.get(helper_id, f"helper#{helper_id}")


@dataclass(frozen=True)
class Helper:
    id: int
    name: str
    fn: HelperFn
    proto: Prototype = UNKNOWN_PROTOTYPE

    def __call__(self, machine: Any, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        return self.fn(machine, r1, r2, r3, r4, r5)


class HelperRegistry:
    """Helpers by id. ``get`` returns None for an unknown id; the interpreter
    turns that into ``UnknownHelper`` (with the pc) when the call executes."""

    def __init__(self, helpers: Iterable[Helper] = ()) -> None:
        self._helpers: dict[int, Helper] = {}
        for helper in helpers:
            self.add(helper)

    def add(self, helper: Helper, *, replace: bool = False) -> Helper:
        if helper.id in self._helpers and not replace:
            raise ValueError(f"helper #{helper.id} ({self._helpers[helper.id].name}) is already registered")
        self._helpers[helper.id] = helper
        return helper

    def register(self, helper_id: int, fn: HelperFn, *, name: str | None = None,
                 proto: Prototype = UNKNOWN_PROTOTYPE, replace: bool = False) -> Helper:
        """Add an implementation for ``helper_id``; the name defaults to the kernel's."""
        return self.add(Helper(helper_id, name or helper_name(helper_id), fn, proto), replace=replace)

    def implements(self, helper_id: int, *, name: str | None = None, proto: Prototype = UNKNOWN_PROTOTYPE,
                   replace: bool = False) -> Callable[[HelperFn], HelperFn]:
        """Decorator form of ``register``."""
        def decorate(fn: HelperFn) -> HelperFn:
            self.register(helper_id, fn, name=name, proto=proto, replace=replace)
            return fn
        return decorate

    def remove(self, helper_id: int) -> Helper:
        return self._helpers.pop(helper_id)

    def get(self, helper_id: int) -> Helper | None:
        return self._helpers.get(helper_id)

    def __getitem__(self, helper_id: int) -> Helper:
        return self._helpers[helper_id]

    def __contains__(self, helper_id: object) -> bool:
        return helper_id in self._helpers

    def __iter__(self) -> Iterator[Helper]:
        return iter(sorted(self._helpers.values(), key=lambda h: h.id))

    def __len__(self) -> int:
        return len(self._helpers)

    def copy(self) -> "HelperRegistry":
        """An independent registry with the same entries (to extend per run)."""
        return HelperRegistry(list(self._helpers.values()))
