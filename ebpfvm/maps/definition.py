"""``MapDefinition``: what a program's object says about a map, before any map exists.

The ELF loader produces these (from BTF-defined ``.maps``, the legacy
``maps`` section, and global data sections); the runtime turns them into
``BpfMap`` objects and the kernel bridge into kernel maps. A program refers to
map ``i`` of ``Program.maps`` with ``lddw rX, map_fd i`` (src 1, imm = i) or
``lddw rX, map_value i, off`` (src 2), the same index convention the kernel
bridge relocates to real fds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MapDefinition:
    name: str
    map_type: str  # the kernel's name without BPF_MAP_TYPE_: "hash", "array", "lru_percpu_hash", ...
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    pinning: int = 0
    # Initial contents of a global-data map (.data, .rodata, .bss: one-entry arrays).
    initial_value: bytes | None = None
    # True for .rodata: the program may not write it (BPF_F_RDONLY_PROG).
    read_only: bool = False
    # The template of the inner maps of array_of_maps / hash_of_maps.
    inner: MapDefinition | None = None
    # Initial slots given with libbpf's ``.values`` (prog_array: program names; map-in-map: map names).
    initial_slots: tuple[tuple[int, str], ...] = ()
    # BTF type ids of key and value, when the object has BTF (0: none).
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)
