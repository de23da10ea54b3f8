"""``queue`` (FIFO) and ``stack`` (LIFO) maps: keyless, values pushed and popped.

Storage is the kernel's ring of ``max_entries + 1`` value slots with a head
(next free slot) and a tail (oldest element). Kernel semantics:

* push flags: BPF_NOEXIST or anything above BPF_EXIST is -EINVAL; pushing
  onto a full map is -E2BIG unless BPF_EXIST, which drops the oldest element
  (for a stack too: the bottom one) to make room;
* pop/peek of an empty map is -ENOENT and zero-fills the program's buffer;
* lookup finds nothing, update and delete by key are -EINVAL (bpf(2)
  update/lookup/lookup_and_delete mean push/peek/pop; ``push``/``pop``/
  ``peek`` here say so directly).
"""

from __future__ import annotations

import errno
from typing import Any

from .base import BpfMap
from .flags import BPF_ANY, BPF_EXIST, BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, BPF_NOEXIST

_CREATE_FLAGS = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK


class QueueMap(BpfMap):
    map_type = "queue"
    lifo = False

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        super().__init__(definition, num_cpus=num_cpus)
        if self.key_size != 0 or self.value_size == 0 or self.max_entries == 0:
            raise self.error(errno.EINVAL, f"a {self.map_type} map needs key_size 0, a value_size and "
                                           f"max_entries")
        self.check_create_flags(_CREATE_FLAGS)
        self.size = self.max_entries + 1
        self.storage = self.allocate(self.size * self.value_size)
        self.head = 0
        self.tail = 0

    def __len__(self) -> int:
        return (self.head - self.tail) % self.size

    def _slot(self, index: int) -> bytes:
        start = index * self.value_size
        return bytes(self.storage[start:start + self.value_size])

    # -- BPF side ---------------------------------------------------------------------------
    def push_elem(self, value: bytes, flags: int) -> int:
        if flags & BPF_NOEXIST or flags > BPF_EXIST:
            return -errno.EINVAL
        if len(self) == self.max_entries:
            if not flags & BPF_EXIST:
                return -errno.E2BIG
            self.tail = (self.tail + 1) % self.size  # drop the oldest
        start = self.head * self.value_size
        self.storage[start:start + self.value_size] = value[:self.value_size]
        self.head = (self.head + 1) % self.size
        return 0

    def _get(self, delete: bool) -> tuple[int, bytes]:
        if not len(self):
            return -errno.ENOENT, bytes(self.value_size)
        if self.lifo:
            index = (self.head - 1) % self.size
            if delete:
                self.head = index
        else:
            index = self.tail
            if delete:
                self.tail = (self.tail + 1) % self.size
        return 0, self._slot(index)

    def pop_elem(self) -> tuple[int, bytes]:
        return self._get(delete=True)

    def peek_elem(self) -> tuple[int, bytes]:
        return self._get(delete=False)

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        return -errno.EINVAL

    def delete_elem(self, key: bytes) -> int:
        return -errno.EINVAL

    # -- Python API ----------------------------------------------------------------------------
    def push(self, value: Any, flags: int = BPF_ANY) -> None:
        raw = self.value_of(value)
        self.check_user_write()
        self.check(self.push_elem(raw, flags), "push")

    def pop(self) -> bytes | None:
        """The next element, removed (None when empty)."""
        self.check_user_write()
        err, value = self.pop_elem()
        return None if err else value

    def peek(self) -> bytes | None:
        err, value = self.peek_elem()
        return None if err else value

    def lookup(self, key: Any = None) -> bytes | None:
        """bpf(2) lookup on a queue or stack peeks."""
        return self.peek()

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        """bpf(2) update on a queue or stack pushes (``key`` must be None or b"")."""
        if key not in (None, b""):
            raise self.error(errno.EINVAL, "a queue or stack has no keys")
        self.push(value, flags)

    def lookup_and_delete(self, key: Any = None) -> bytes | None:
        """bpf(2) lookup_and_delete on a queue or stack pops."""
        return self.pop()

    def delete(self, key: Any) -> None:
        raise self.error(errno.EINVAL, "a queue or stack has no keys to delete")

    def values(self) -> list[bytes]:
        """The elements in the order ``pop`` would return them."""
        count = len(self)
        if self.lifo:
            return [self._slot((self.head - 1 - i) % self.size) for i in range(count)]
        return [self._slot((self.tail + i) % self.size) for i in range(count)]

    def items(self) -> list[tuple[bytes, Any]]:
        return [(b"", value) for value in self.values()]

    def __contains__(self, key: object) -> bool:
        return False


class StackMap(QueueMap):
    map_type = "stack"
    lifo = True
