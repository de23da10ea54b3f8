"""Array maps: ``array`` (also the global-data maps .data/.rodata/.bss) and
``percpu_array``.

Every index below ``max_entries`` always exists, zero-initialised; values are
``round_up(value_size, 8)`` bytes apart as in the kernel. Kernel semantics:

* key is a u32 index; lookup of an index out of range finds nothing (NULL /
  ENOENT), update of one is -E2BIG;
* update flags: anything but BPF_ANY/NOEXIST/EXIST (plus BPF_F_LOCK on a
  value with a spin lock) is -EINVAL; BPF_NOEXIST is always -EEXIST (every
  element exists); BPF_EXIST always succeeds;
* delete is -EINVAL;
* ``percpu_array``: a program reads and writes the running CPU's slot; from
  Python a value is one 8-byte-aligned slot per CPU.
"""

from __future__ import annotations

import errno
from typing import Any, Sequence

from .base import PCPU_MIN_UNIT_SIZE, VALUES_OFFSET, BpfMap, RegionSpec
from .coerce import u32
from .errors import ENOTSUPP
from .flags import (BPF_ANY, BPF_EXIST, BPF_F_ACCESS_MASK, BPF_F_INNER_MAP, BPF_F_LOCK, BPF_F_MMAPABLE,
                    BPF_F_NUMA_NODE, BPF_F_PRESERVE_ELEMS, BPF_NOEXIST)
from .views import value_view

_CREATE_FLAGS = BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP


class ArrayMap(BpfMap):
    map_type = "array"

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        super().__init__(definition, num_cpus=num_cpus)
        if self.key_size != 4 or self.value_size == 0 or self.max_entries == 0:
            raise self.error(errno.EINVAL, f"an {self.map_type} map needs key_size 4, a value_size and "
                                           f"max_entries (got {self.key_size}, {self.value_size}, "
                                           f"{self.max_entries})")
        self.check_create_flags(_CREATE_FLAGS)
        if self.percpu and self.value_size > PCPU_MIN_UNIT_SIZE:
            raise self.error(errno.E2BIG, f"per-CPU value_size {self.value_size} exceeds {PCPU_MIN_UNIT_SIZE}")
        self.element_stride = self.value_stride * (self.num_cpus if self.percpu else 1)
        self.storage = self.allocate(self.element_stride * self.max_entries)
        initial = definition.initial_value
        if initial:
            if len(initial) > self.value_size:
                raise self.error(errno.EINVAL, f"initial value of {len(initial)} bytes exceeds value_size "
                                               f"{self.value_size}")
            self.storage[:len(initial)] = initial

    # -- layout ---------------------------------------------------------------------------
    def offset_of(self, index: int, cpu: int = 0) -> int:
        return index * self.element_stride + (cpu * self.value_stride if self.percpu else 0)

    def regions(self) -> Sequence[RegionSpec]:
        return (RegionSpec("", VALUES_OFFSET, self.storage),)

    # -- BPF side ---------------------------------------------------------------------------
    def lookup_address(self, key: bytes, cpu: int) -> int:
        index = u32(key)
        if index >= self.max_entries:
            return 0
        return self.window_base(None) + VALUES_OFFSET + self.offset_of(index, cpu % self.num_cpus)

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        index = u32(key)
        err = self._check_update(index, flags)
        if err:
            return err
        self.store(self.storage, self.offset_of(index, cpu % self.num_cpus), value[:self.value_size])
        return 0

    def delete_elem(self, key: bytes) -> int:
        return -errno.EINVAL

    def value_address(self, offset: int, window_base: int | None = None) -> int:
        if self.percpu:
            return super().value_address(offset, window_base)
        if self.max_entries != 1:
            # The kernel gives direct value access (global data) only to single-entry arrays.
            raise self.error(ENOTSUPP, f"direct value access needs a single-entry array, not {self.max_entries}")
        if not 0 <= offset < self.value_size:
            raise self.error(errno.EACCES, f"direct value offset {offset} outside the {self.value_size}-byte value")
        return self.window_base(window_base) + VALUES_OFFSET + offset

    def _check_update(self, index: int, flags: int) -> int:
        if flags & ~BPF_F_LOCK > BPF_EXIST:
            return -errno.EINVAL
        if index >= self.max_entries:
            return -errno.E2BIG
        if flags & BPF_NOEXIST:
            return -errno.EEXIST
        if flags & BPF_F_LOCK and (self.percpu or self.spin_lock_off is None):
            return -errno.EINVAL
        return 0

    # -- Python API ------------------------------------------------------------------------------
    def lookup(self, key: Any) -> bytes | list[bytes] | None:
        index = u32(self.key_bytes(key))
        if index >= self.max_entries:
            return None
        start = self.offset_of(index)
        if self.percpu:
            return self.split_percpu(self.storage[start:start + self.element_stride])
        return bytes(self.storage[start:start + self.value_size])

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        index = u32(self.key_bytes(key))
        self.check_user_write()
        if flags & BPF_F_LOCK and (self.percpu or self.spin_lock_off is None):
            raise self.error(errno.EINVAL, "BPF_F_LOCK needs a value with a bpf_spin_lock")
        self.check(self._check_update(index, flags), "update")
        if self.percpu:
            start = self.offset_of(index)
            self.storage[start:start + self.element_stride] = b"".join(self.percpu_values(value))
        else:
            self.store(self.storage, self.offset_of(index), self.value_of(value))

    def delete(self, key: Any) -> None:
        self.key_bytes(key)
        self.check_user_write()
        raise self.error(errno.EINVAL, "array elements cannot be deleted")

    def keys(self) -> list[bytes]:
        return [i.to_bytes(4, "little") for i in range(self.max_entries)]

    def __len__(self) -> int:
        return self.max_entries

    # -- numpy ----------------------------------------------------------------------------------
    def as_array(self, dtype: Any = None) -> Any:
        """A live view of all values: shape (max_entries, value_size) uint8, or
        (max_entries,) of ``dtype``; per-CPU maps add a CPU axis after the
        index. Writes through the view change the map."""
        outer: tuple[tuple[int, int], ...] = ((self.max_entries, self.element_stride),)
        if self.percpu:
            outer += ((self.num_cpus, self.value_stride),)
        return value_view(self.storage, outer, self.value_size, dtype, self.name)

    values_array = as_array


class PercpuArrayMap(ArrayMap):
    map_type = "percpu_array"
    percpu = True
