"""``perf_event_array``: per-CPU perf buffers that ``bpf_perf_event_output``
writes samples to; here the samples are captured as ``PerfEvent(cpu, data)``.

In the kernel each slot holds a perf event opened (by user space) on one CPU.
Here slot ``i`` is *open on CPU i* for every ``i`` below both ``max_entries``
and ``num_cpus`` -- what libbpf's perf_buffer sets up -- and ``open``/``close``
(or ``update``/``delete`` with a CPU number as value) change that.
``max_entries`` 0 means one slot per CPU, as libbpf does before creating the
map. Kernel semantics of an output to slot ``index`` from a program running
on ``cpu``: an index past the end is -E2BIG, an empty slot -ENOENT, a slot
open on another CPU -EOPNOTSUPP. ``data`` is recorded exactly as given (the
kernel pads raw samples to 8 bytes minus 4; libbpf hands that padding on).
"""

from __future__ import annotations

import errno
from dataclasses import replace
from typing import Any, NamedTuple

from .base import BpfMap
from .coerce import u32
from .flags import BPF_ANY, BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, BPF_F_PRESERVE_ELEMS


class PerfEvent(NamedTuple):
    """One sample: the CPU whose buffer received it and its bytes."""

    cpu: int
    data: bytes


class PerfEventArrayMap(BpfMap):
    map_type = "perf_event_array"

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        if definition.max_entries == 0:
            definition = replace(definition, max_entries=num_cpus)
        super().__init__(definition, num_cpus=num_cpus)
        if self.key_size != 4 or self.value_size != 4:
            raise self.error(errno.EINVAL, "a perf_event_array needs key_size 4 and value_size 4")
        self.check_create_flags(BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS)
        self.slots: list[int | None] = [i if i < num_cpus else None for i in range(self.max_entries)]
        self.events: list[PerfEvent] = []

    # -- BPF side ---------------------------------------------------------------------------
    def output(self, index: int, data: bytes, *, cpu: int | None = None) -> int:
        """A sample to slot ``index`` from a program running on ``cpu``
        (default: the slot's own CPU); 0 or -errno."""
        if index >= self.max_entries:
            return -errno.E2BIG
        owner = self.slots[index]
        if owner is None:
            return -errno.ENOENT
        if cpu is not None and owner != cpu:
            return -errno.EOPNOTSUPP
        self.events.append(PerfEvent(owner, bytes(data)))
        return 0

    # -- Python API ----------------------------------------------------------------------------
    def open(self, index: int, cpu: int | None = None) -> None:
        """Open slot ``index`` on ``cpu`` (default: CPU ``index``)."""
        self._check_index(index)
        self.slots[index] = index if cpu is None else cpu

    def close(self, index: int) -> None:
        self._check_index(index)
        if self.slots[index] is None:
            raise self.error(errno.ENOENT, f"slot {index} is not open")
        self.slots[index] = None

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.max_entries:
            raise self.error(errno.E2BIG, f"index {index} is outside the {self.max_entries} slots")

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        """Open slot ``key`` on the CPU given as ``value``."""
        index = u32(self.key_bytes(key))
        if flags != BPF_ANY:
            raise self.error(errno.EINVAL, "fd arrays take only BPF_ANY")
        self.open(index, u32(self.value_of(value)))

    def delete(self, key: Any) -> None:
        self.close(u32(self.key_bytes(key)))

    def lookup(self, key: Any) -> bytes | None:
        """The CPU slot ``key`` is open on (4 bytes), or None."""
        index = u32(self.key_bytes(key))
        owner = self.slots[index] if index < self.max_entries else None
        return None if owner is None else owner.to_bytes(4, "little")

    def keys(self) -> list[bytes]:
        return [i.to_bytes(4, "little") for i, cpu in enumerate(self.slots) if cpu is not None]

    def consume(self) -> list[PerfEvent]:
        """The captured samples, removed."""
        out, self.events = self.events, []
        return out
