"""``lpm_trie``: longest-prefix-match map (IP routing tables).

A key is ``struct bpf_lpm_trie_key``: a u32 ``prefixlen`` (host byte order,
little endian) followed by ``key_size - 4`` data bytes read most significant
bit first (network order). An element matches a lookup key when its prefix
length is at most the key's and their first ``prefixlen`` bits agree; lookup
returns the matching element with the longest prefix.

The kernel keeps a binary trie; we keep a dict from (prefixlen, data with the
bits past the prefix cleared) to the element, which finds the same element:
every element matching a key lies on the key's path through the trie. What
the kernel stores and reports back (``keys()``) is the data exactly as last
written, bits past the prefix included, and so do we.

Kernel semantics: the map must be created with BPF_F_NO_PREALLOC; update
flags above BPF_EXIST and a prefixlen above ``8 * (key_size - 4)`` are
-EINVAL; BPF_NOEXIST on a present prefix -EEXIST; BPF_EXIST on an absent one
-ENOENT; a new prefix in a full map -ENOSPC (replacing one still works); a
replaced element gets new storage (the kernel allocates a new node), so a
pointer to the old value keeps the old value; delete needs the exact prefix
(-ENOENT otherwise).
"""

from __future__ import annotations

import errno
from typing import Any, Sequence

from .base import VALUES_OFFSET, BpfMap, RegionSpec
from .coerce import u32
from .flags import BPF_ANY, BPF_EXIST, BPF_F_ACCESS_MASK, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_NOEXIST

_CREATE_FLAGS = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
LPM_DATA_SIZE_MIN = 1
LPM_DATA_SIZE_MAX = 256


def masked(data: bytes, prefixlen: int) -> bytes:
    """``data`` with every bit after the first ``prefixlen`` cleared."""
    full, rest = divmod(prefixlen, 8)
    if full >= len(data):
        return bytes(data)
    head = data[:full]
    if rest:
        head += bytes([data[full] & (0xFF << (8 - rest)) & 0xFF])
    return head.ljust(len(data), b"\0")


class LpmTrieMap(BpfMap):
    map_type = "lpm_trie"

    def __init__(self, definition: Any, *, num_cpus: int = 2) -> None:
        super().__init__(definition, num_cpus=num_cpus)
        data_size = self.key_size - 4
        if not LPM_DATA_SIZE_MIN <= data_size <= LPM_DATA_SIZE_MAX or self.value_size == 0 \
                or self.max_entries == 0:
            raise self.error(errno.EINVAL, f"an lpm_trie needs key_size 4 + 1..{LPM_DATA_SIZE_MAX}, a "
                                           f"value_size and max_entries")
        if not self.flags & BPF_F_NO_PREALLOC:
            raise self.error(errno.EINVAL, "an lpm_trie must be created with BPF_F_NO_PREALLOC")
        self.check_create_flags(_CREATE_FLAGS)
        self.data_size = data_size
        self.max_prefixlen = 8 * data_size
        # One slot more than max_entries: a replacement takes a fresh slot
        # before the replaced one is freed, as the kernel's new node does.
        self.storage = self.allocate(self.value_stride * (self.max_entries + 1))
        self.free = list(range(self.max_entries, -1, -1))
        self.entries: dict[tuple[int, bytes], tuple[bytes, int]] = {}  # -> (key as written, slot)
        self._lengths: dict[int, int] = {}  # prefixlen -> number of elements with it
        self._longest_first: list[int] | None = []

    def regions(self) -> Sequence[RegionSpec]:
        return (RegionSpec("", VALUES_OFFSET, self.storage),)

    # -- matching -------------------------------------------------------------------------
    def _split(self, key: bytes) -> tuple[int, bytes]:
        return u32(key), bytes(key[4:4 + self.data_size])

    def _match(self, key: bytes) -> tuple[bytes, int] | None:
        prefixlen, data = self._split(key)
        if prefixlen > self.max_prefixlen:
            return None
        if self._longest_first is None:
            self._longest_first = sorted(self._lengths, reverse=True)
        for length in self._longest_first:
            if length <= prefixlen:
                found = self.entries.get((length, masked(data, length)))
                if found is not None:
                    return found
        return None

    def _count(self, prefixlen: int, delta: int) -> None:
        count = self._lengths.get(prefixlen, 0) + delta
        if count:
            self._lengths[prefixlen] = count
        else:
            del self._lengths[prefixlen]
        self._longest_first = None

    # -- BPF side ---------------------------------------------------------------------------
    def lookup_address(self, key: bytes, cpu: int) -> int:
        found = self._match(key)
        if found is None:
            return 0
        return self.window_base(None) + VALUES_OFFSET + found[1] * self.value_stride

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        if flags > BPF_EXIST:
            return -errno.EINVAL
        prefixlen, data = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -errno.EINVAL
        ident = (prefixlen, masked(data, prefixlen))
        old = self.entries.get(ident)
        if old is not None and flags == BPF_NOEXIST:
            return -errno.EEXIST
        if old is None:
            if flags == BPF_EXIST:
                return -errno.ENOENT
            if len(self.entries) >= self.max_entries:
                return -errno.ENOSPC
        slot = self.free.pop()
        self.store_new(self.storage, slot * self.value_stride, value[:self.value_size])
        self.entries[ident] = (bytes(key[:self.key_size]), slot)
        if old is None:
            self._count(prefixlen, 1)
        else:
            self.free.append(old[1])
        return 0

    def delete_elem(self, key: bytes) -> int:
        prefixlen, data = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -errno.EINVAL
        old = self.entries.pop((prefixlen, masked(data, prefixlen)), None)
        if old is None:
            return -errno.ENOENT
        self.free.append(old[1])
        self._count(prefixlen, -1)
        return 0

    # -- Python API ----------------------------------------------------------------------------
    def lookup(self, key: Any) -> bytes | None:
        """The value of the longest prefix matching ``key`` (as bpf(2) does)."""
        found = self._match(self.key_bytes(key))
        if found is None:
            return None
        start = found[1] * self.value_stride
        return bytes(self.storage[start:start + self.value_size])

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        raw_key = self.key_bytes(key)
        self.check_user_write()
        self.check(self.update_elem(raw_key, self.value_of(value), flags, 0), "update")

    def delete(self, key: Any) -> None:
        raw_key = self.key_bytes(key)
        self.check_user_write()
        self.check(self.delete_elem(raw_key), "delete")

    def keys(self) -> list[bytes]:
        return [key for key, _ in self.entries.values()]

    def items(self) -> list[tuple[bytes, Any]]:
        size, stride = self.value_size, self.value_stride
        return [(key, bytes(self.storage[slot * stride:slot * stride + size])) for key, slot in self.entries.values()]

    def __len__(self) -> int:
        return len(self.entries)

    @staticmethod
    def make_key(prefixlen: int, data: bytes) -> bytes:
        """``struct bpf_lpm_trie_key`` bytes for ``prefixlen`` and ``data``."""
        return prefixlen.to_bytes(4, "little") + bytes(data)
