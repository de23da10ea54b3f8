"""``prog_array``: the jump table of ``bpf_tail_call``.

A slot holds a reference to a program: its name (as in the object file,
resolved by whoever performs the tail call) or a ``Program``-like object.
The definition's ``initial_slots`` (libbpf's ``.values = { [i] = &prog }``)
fill the slots by name. Kernel semantics of the fd-array updates: only
BPF_ANY (else -EINVAL), an index past the end is -E2BIG, deleting an empty
slot -ENOENT. Programs cannot read or write the slots; only the tail call
helper uses them (``program_at``).
"""

from __future__ import annotations

import errno
from typing import Any

from .base import BpfMap
from .coerce import u32
from .flags import BPF_ANY, BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, BPF_F_PRESERVE_ELEMS


class FdArrayMap(BpfMap):
    """Slots indexed by a u32 holding Python objects instead of bytes."""

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        super().__init__(definition, num_cpus=num_cpus)
        if self.key_size != 4 or self.value_size != 4 or self.max_entries == 0:
            raise self.error(errno.EINVAL, f"a {self.map_type} needs key_size 4, value_size 4 and max_entries")
        self.check_create_flags(BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS)
        self.slots: list[Any] = [None] * self.max_entries

    def _index(self, key: Any) -> int:
        return key if isinstance(key, int) and not isinstance(key, bool) and key >= 0 else u32(self.key_bytes(key))

    def check_slot_value(self, value: Any) -> Any:
        return value

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        index = self._index(key)
        self.check_user_write()
        if flags != BPF_ANY:
            raise self.error(errno.EINVAL, "fd arrays take only BPF_ANY")
        if index >= self.max_entries:
            raise self.error(errno.E2BIG, f"index {index} is outside the {self.max_entries} slots")
        if value is None:
            raise self.error(errno.EBADF, "a slot value cannot be None (use delete)")
        self.slots[index] = self.check_slot_value(value)

    def delete(self, key: Any) -> None:
        index = self._index(key)
        self.check_user_write()
        if index >= self.max_entries:
            raise self.error(errno.E2BIG, f"index {index} is outside the {self.max_entries} slots")
        if self.slots[index] is None:
            raise self.error(errno.ENOENT, f"slot {index} is empty")
        self.slots[index] = None

    def lookup(self, key: Any) -> Any:
        """The object in slot ``key``, or None."""
        index = self._index(key)
        return self.slots[index] if index < self.max_entries else None

    def keys(self) -> list[bytes]:
        return [i.to_bytes(4, "little") for i, slot in enumerate(self.slots) if slot is not None]

    def __len__(self) -> int:
        return sum(slot is not None for slot in self.slots)


class ProgArrayMap(FdArrayMap):
    map_type = "prog_array"

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        super().__init__(definition, num_cpus=num_cpus)
        for index, name in definition.initial_slots:
            if not 0 <= index < self.max_entries:
                raise self.error(errno.E2BIG, f"initial slot {index} ({name}) is outside the "
                                              f"{self.max_entries} slots")
            self.slots[index] = name

    def program_at(self, index: int) -> Any:
        """What ``bpf_tail_call(ctx, map, index)`` jumps to (None: falls through)."""
        return self.slots[index] if 0 <= index < self.max_entries else None
