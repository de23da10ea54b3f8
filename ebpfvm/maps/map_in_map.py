"""Maps of maps: ``array_of_maps`` and ``hash_of_maps``.

Their values are ``BpfMap`` objects compatible with the definition's
``inner`` template (same type, key and value sizes and flags, and same
max_entries unless the template has BPF_F_INNER_MAP), checked on insertion
(-EINVAL otherwise, as bpf_map_meta_equal). A program's lookup returns the
inner map's handle, which it then passes to the map helpers; so an inner map
must be bound in the run, which ``ebpfvm.maps.binding.bind_maps`` does for
every map reachable from the program's maps.

``initial_slots`` from the object file name maps (libbpf's ``.values``);
those names are resolved with ``resolve_initial_slots`` once the maps exist.
Programs cannot update these maps (the kernel's verifier refuses it); from
Python, ``array_of_maps`` behaves as an fd array (only BPF_ANY, -E2BIG past
the end) and ``hash_of_maps`` as a hash map (NOEXIST/EXIST, -E2BIG when full).
"""

from __future__ import annotations

import errno
from typing import Any, Mapping

from .base import BpfMap
from .coerce import u32
from .flags import (BPF_ANY, BPF_EXIST, BPF_F_ACCESS_MASK, BPF_F_INNER_MAP, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE,
                    BPF_NOEXIST)
from .prog_array import FdArrayMap

MAP_IN_MAP_TYPES = ("array_of_maps", "hash_of_maps")


class _MapOfMaps(BpfMap):
    """What both kinds share: the inner template and the compatibility check."""

    def _check_template(self) -> None:
        inner = self.definition.inner
        if inner is None:
            raise self.error(errno.EINVAL, "a map of maps needs an inner map template")
        if inner.map_type in MAP_IN_MAP_TYPES:
            raise self.error(errno.EINVAL, "the inner map of a map of maps cannot be one")

    def check_inner(self, value: Any) -> BpfMap:
        template = self.definition.inner
        assert template is not None  # checked at creation
        if not isinstance(value, BpfMap):
            raise self.error(errno.EBADF, f"a value of a map of maps must be a BpfMap, "
                                          f"got {type(value).__name__}")
        same = (value.map_type == template.map_type and value.key_size == template.key_size
                and value.value_size == template.value_size and value.flags == template.flags
                and (value.max_entries == template.max_entries or template.flags & BPF_F_INNER_MAP))
        if not same:
            raise self.error(errno.EINVAL, f"map {value.name!r} ({value.map_type}, key {value.key_size}, "
                                           f"value {value.value_size}, max {value.max_entries}, flags "
                                           f"{value.flags:#x}) does not match the inner map template")
        return value

    def inner_maps(self) -> list[BpfMap]:
        raise NotImplementedError

    def resolve_initial_slots(self, maps: Mapping[str, BpfMap]) -> None:
        """Fill the slots the object file names (``initial_slots``) from ``maps``."""
        for index, name in self.definition.initial_slots:
            found = maps.get(name)
            if found is None:
                raise self.error(errno.ENOENT, f"initial slot {index} names unknown map {name!r}")
            self.update(index.to_bytes(4, "little"), found)


def _handle_of(inner: BpfMap) -> int:
    return inner.window_base(None)


class ArrayOfMapsMap(_MapOfMaps, FdArrayMap):
    map_type = "array_of_maps"

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        FdArrayMap.__init__(self, definition, num_cpus=num_cpus)
        self._check_template()

    def check_slot_value(self, value: Any) -> Any:
        return self.check_inner(value)

    def lookup_address(self, key: bytes, cpu: int) -> int:
        index = u32(key)
        inner = self.slots[index] if index < self.max_entries else None
        return 0 if inner is None else _handle_of(inner)

    def inner_maps(self) -> list[BpfMap]:
        return [slot for slot in self.slots if slot is not None]


class HashOfMapsMap(_MapOfMaps):
    map_type = "hash_of_maps"

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        BpfMap.__init__(self, definition, num_cpus=num_cpus)
        if self.key_size == 0 or self.value_size != 4 or self.max_entries == 0:
            raise self.error(errno.EINVAL, "a hash_of_maps needs a key_size, value_size 4 and max_entries")
        self.check_create_flags(BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)
        self._check_template()
        self.index: dict[bytes, BpfMap] = {}

    def lookup_address(self, key: bytes, cpu: int) -> int:
        inner = self.index.get(bytes(key))
        return 0 if inner is None else _handle_of(inner)

    def lookup(self, key: Any) -> BpfMap | None:
        return self.index.get(self.key_bytes(key))

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        raw_key = self.key_bytes(key)
        self.check_user_write()
        if flags > BPF_EXIST:
            raise self.error(errno.EINVAL, f"unknown update flags {flags:#x}")
        inner = self.check_inner(value)
        present = raw_key in self.index
        if present and flags == BPF_NOEXIST:
            raise self.error(errno.EEXIST, "key already present")
        if not present and flags == BPF_EXIST:
            raise self.error(errno.ENOENT, "key not present")
        if not present and len(self.index) >= self.max_entries:
            raise self.error(errno.E2BIG, f"the map is full ({self.max_entries} entries)")
        self.index[raw_key] = inner

    def delete(self, key: Any) -> None:
        raw_key = self.key_bytes(key)
        self.check_user_write()
        if self.index.pop(raw_key, None) is None:
            raise self.error(errno.ENOENT, "key not present")

    def keys(self) -> list[bytes]:
        return list(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def inner_maps(self) -> list[BpfMap]:
        return list(self.index.values())
