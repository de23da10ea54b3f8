"""Hash maps: ``hash``, ``percpu_hash``, ``lru_hash``, ``lru_percpu_hash``.

Storage is preallocated as in the kernel's default (preallocated) hash maps:
a slot area of ``max_entries`` values (plus, for ``hash``, one spare slot per
CPU), so a pointer into a value stays valid while the element lives -- and,
as in the kernel, keeps pointing at the same memory after the element is
deleted or replaced. ``index`` maps each key to its slot.

Kernel semantics reproduced:

* update flags: more than BPF_EXIST (plus BPF_F_LOCK for ``hash`` with a spin
  lock) is -EINVAL; BPF_NOEXIST on a present key -EEXIST; BPF_EXIST on an
  absent key -ENOENT; a new key in a full map -E2BIG (not for LRU maps);
* ``hash`` replaces an element by writing the new value into the running
  CPU's spare slot (CPU 0's for an update from Python) and making the old
  slot the spare (htab's extra_elems), so a program holding a pointer to the
  old value keeps reading the old value; BPF_F_LOCK updates in place;
* per-CPU maps update in place; a new element created by a program gets the
  value on the running CPU and zeros on the others (pcpu_init_value);
* delete of an absent key is -ENOENT.

LRU policy (the kernel's is approximate: per-CPU free lists, active and
inactive lists with reference bits, batch shrinking). Ours is exact LRU:
every successful update and every lookup *from a program* makes the key the
most recently used (lookups from Python do not, like the kernel's
``map_lookup_elem_sys_only``); inserting a new key into a full map evicts
exactly the least recently used key first. Flags are checked before evicting,
so a failing update never evicts; an update of a present key is done in
place. The kernel agrees with this as long as the map does not fill up; when
it does, it may evict earlier and several keys at once.
"""

from __future__ import annotations

import errno
from typing import Any, Sequence

from .base import PCPU_MIN_UNIT_SIZE, VALUES_OFFSET, BpfMap, RegionSpec
from .errors import ENOTSUPP
from .flags import (BPF_ANY, BPF_EXIST, BPF_F_ACCESS_MASK, BPF_F_LOCK, BPF_F_NO_COMMON_LRU,
                    BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_ZERO_SEED, BPF_NOEXIST)
from .views import records

_CREATE_FLAGS = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED
MAX_KEY_SIZE = 512  # MAX_BPF_STACK: a program must be able to build the key on its stack


class HashMap(BpfMap):
    map_type = "hash"
    lru = False

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        super().__init__(definition, num_cpus=num_cpus)
        if self.key_size == 0 or self.value_size == 0 or self.max_entries == 0:
            raise self.error(errno.EINVAL, f"a {self.map_type} map needs key_size, value_size and max_entries")
        self.check_create_flags(_CREATE_FLAGS)
        if self.lru and self.flags & BPF_F_NO_PREALLOC:
            raise self.error(ENOTSUPP, "LRU maps are always preallocated (BPF_F_NO_PREALLOC)")
        if not self.lru and self.flags & BPF_F_NO_COMMON_LRU:
            raise self.error(errno.EINVAL, "BPF_F_NO_COMMON_LRU on a map that is not LRU")
        if self.key_size > MAX_KEY_SIZE:
            raise self.error(errno.E2BIG, f"key_size {self.key_size} exceeds {MAX_KEY_SIZE}")
        if self.percpu and self.value_size > PCPU_MIN_UNIT_SIZE:
            raise self.error(errno.E2BIG, f"per-CPU value_size {self.value_size} exceeds {PCPU_MIN_UNIT_SIZE}")
        self.slot_stride = self.value_stride * (self.num_cpus if self.percpu else 1)
        spares = 0 if self.percpu or self.lru else self.num_cpus
        self.storage = self.allocate(self.slot_stride * (self.max_entries + spares))
        self.index: dict[bytes, int] = {}  # key -> slot; for LRU maps oldest first
        self.free = list(range(self.max_entries - 1, -1, -1))  # a stack: slot 0 is used first
        self.spare = [self.max_entries + cpu for cpu in range(spares)]

    # -- layout ------------------------------------------------------------------------------
    def regions(self) -> Sequence[RegionSpec]:
        return (RegionSpec("", VALUES_OFFSET, self.storage),)

    def slot_offset(self, slot: int, cpu: int = 0) -> int:
        return slot * self.slot_stride + cpu * self.value_stride

    # -- BPF side ------------------------------------------------------------------------------
    def lookup_address(self, key: bytes, cpu: int) -> int:
        slot = self.index.get(key)
        if slot is None:
            return 0
        if self.lru:
            self._touch(key)
        cpu = cpu % self.num_cpus if self.percpu else 0
        return self.window_base(None) + VALUES_OFFSET + self.slot_offset(slot, cpu)

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        return self._update(bytes(key), flags, cpu, value[:self.value_size], None)

    def delete_elem(self, key: bytes) -> int:
        slot = self.index.pop(bytes(key), None)
        if slot is None:
            return -errno.ENOENT
        self.free.append(slot)
        return 0

    # -- the update algorithm shared by both sides ----------------------------------------------
    def _check_flags(self, flags: int) -> int:
        lockable = not self.percpu and not self.lru
        if (flags & ~BPF_F_LOCK if lockable else flags) > BPF_EXIST:
            return -errno.EINVAL
        if flags & BPF_F_LOCK and self.spin_lock_off is None:
            return -errno.EINVAL
        return 0

    def _update(self, key: bytes, flags: int, cpu: int, value: bytes, per_cpu: list[bytes] | None) -> int:
        """``value`` from a program (running on ``cpu``) or, for per-CPU maps
        from Python, ``per_cpu``: one stride-sized slot per CPU."""
        err = self._check_flags(flags)
        if err:
            return err
        slot = self.index.get(key)
        mode = flags & ~BPF_F_LOCK
        if slot is not None and mode == BPF_NOEXIST:
            return -errno.EEXIST
        if slot is None and mode == BPF_EXIST:
            return -errno.ENOENT
        if slot is not None:
            if self.percpu:
                self._write_percpu(slot, value, per_cpu, cpu, fresh=False)
            elif self.lru or flags & BPF_F_LOCK:
                self.store(self.storage, self.slot_offset(slot), value)
            else:
                slot = self._replace(key, slot, cpu)
                self.store_new(self.storage, self.slot_offset(slot), value)
            if self.lru:
                self._touch(key)
            return 0
        if not self.free:
            if not self.lru:
                return -errno.E2BIG
            self.delete_elem(next(iter(self.index)))  # evict the least recently used
        slot = self.free.pop()
        if self.percpu:
            self._write_percpu(slot, value, per_cpu, cpu, fresh=True)
        else:
            self.store_new(self.storage, self.slot_offset(slot), value)
        self.index[key] = slot
        return 0

    def _replace(self, key: bytes, old: int, cpu: int) -> int:
        """Move ``key`` to this CPU's spare slot; the old slot becomes the spare."""
        cpu %= len(self.spare)
        new, self.spare[cpu] = self.spare[cpu], old
        self.index[key] = new
        return new

    def _write_percpu(self, slot: int, value: bytes, per_cpu: list[bytes] | None, cpu: int, fresh: bool) -> None:
        start = self.slot_offset(slot)
        if per_cpu is not None:
            self.storage[start:start + self.slot_stride] = b"".join(per_cpu)
            return
        cpu %= self.num_cpus
        if fresh:  # the other CPUs' slots of a new element read as zeros
            self.storage[start:start + self.slot_stride] = bytes(self.slot_stride)
        self.store(self.storage, self.slot_offset(slot, cpu), value)

    def _touch(self, key: bytes) -> None:
        self.index[key] = self.index.pop(key)

    # -- Python API ------------------------------------------------------------------------------
    def lookup(self, key: Any) -> bytes | list[bytes] | None:
        slot = self.index.get(self.key_bytes(key))
        if slot is None:
            return None
        start = self.slot_offset(slot)
        if self.percpu:
            return self.split_percpu(self.storage[start:start + self.slot_stride])
        return bytes(self.storage[start:start + self.value_size])

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        raw_key = self.key_bytes(key)
        self.check_user_write()
        if flags & BPF_F_LOCK and self.spin_lock_off is None:
            raise self.error(errno.EINVAL, "BPF_F_LOCK needs a value with a bpf_spin_lock")
        if self.percpu:
            self.check(self._update(raw_key, flags, 0, b"", self.percpu_values(value)), "update")
        else:
            self.check(self._update(raw_key, flags, 0, self.value_of(value), None), "update")

    def delete(self, key: Any) -> None:
        raw_key = self.key_bytes(key)
        self.check_user_write()
        self.check(self.delete_elem(raw_key), "delete")

    def keys(self) -> list[bytes]:
        return list(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def clear(self) -> None:
        """Delete every element."""
        for key in list(self.index):
            self.delete_elem(key)

    # -- numpy (snapshots: a hash map's elements have no fixed order) ------------------------------
    def keys_array(self, dtype: Any = None) -> Any:
        """The keys, in ``keys()`` order, as a fresh array."""
        return records(self.keys(), self.key_size, dtype)

    def values_array(self, dtype: Any = None) -> Any:
        """The values, in ``keys()`` order, as a fresh array: (n, value_size)
        uint8 or (n,) of ``dtype``; per-CPU maps add a CPU axis after n."""
        chunks: list[bytes] = []
        for value in self.values():
            chunks.extend(value if self.percpu else [value])
        flat = records(chunks, self.value_size, dtype)
        if self.percpu:
            return flat.reshape((len(self.index), self.num_cpus) + flat.shape[1:])
        return flat


class PercpuHashMap(HashMap):
    map_type = "percpu_hash"
    percpu = True


class LruHashMap(HashMap):
    map_type = "lru_hash"
    lru = True


class LruPercpuHashMap(HashMap):
    map_type = "lru_percpu_hash"
    lru = True
    percpu = True
