"""``BpfMap``: what every map offers, to Python and to programs.

Two faces over one storage:

* the **Python API** (``lookup``, ``update``, ``delete``, ``keys``, ``items``,
  ``len()``, numpy views) behaves like bpf(2) from user space: errors raise
  ``MapError`` with the kernel's errno; per-CPU maps read and write one value
  per CPU;
* the **BPF-side API** the helpers call (``lookup_address``, ``update_elem``,
  ``delete_elem``, ``push_elem``/``pop_elem``/``peek_elem``) behaves like the
  kernel's map ops called from a program: it returns ``-errno`` (never raises
  for anything a program can cause) and sees only the running CPU's slot of a
  per-CPU map.

Values live in ``bytearray``s that ``bind`` maps into a run's ``MemoryMap``
as regions, so a pointer a program got from ``bpf_map_lookup_elem`` reads and
writes the map itself, and the Python side sees those writes at once. Each map
gets a window of ``MAP_WINDOW`` addresses (``ebpfvm.memory.map_window``): its
handle -- the number ``lddw rX, map_fd i`` loads -- is the window's base, whose
first page stays unmapped so that a handle is never a readable address; the
regions start one page in.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Sequence

from ..memory import MAP_WINDOW, MemoryMap, Region
from .coerce import round8, to_bytes
from .errors import ENOTSUPP, MapError
from .flags import BPF_ANY, BPF_F_RDONLY, BPF_F_RDONLY_PROG

if TYPE_CHECKING:
    from .definition import MapDefinition

PAGE_SIZE = 4096
VALUES_OFFSET = PAGE_SIZE  # where a map's first region starts inside its window
MAX_STORAGE = 1 << 30  # bytes of storage one simulated map may allocate
PCPU_MIN_UNIT_SIZE = 32 << 10  # the largest per-CPU value the kernel allocates


@dataclass(frozen=True)
class RegionSpec:
    """A region a map contributes to its window: ``data`` at ``offset``."""

    suffix: str  # appended to "map NAME" to name the region
    offset: int
    data: bytearray
    writable: bool = True


class BpfMap:
    """Base class; see the module docstring. Subclasses set ``map_type``
    (the kernel's name without ``BPF_MAP_TYPE_``) and ``percpu``."""

    map_type: ClassVar[str] = ""
    percpu: ClassVar[bool] = False

    def __init__(self, definition: "MapDefinition", *, num_cpus: int = 2) -> None:
        if num_cpus < 1:
            raise MapError(errno.EINVAL, f"num_cpus must be at least 1, got {num_cpus}", definition.name)
        self.definition = definition
        self.name = definition.name
        self.key_size = definition.key_size
        self.value_size = definition.value_size
        self.max_entries = definition.max_entries
        self.flags = definition.flags
        self.num_cpus = num_cpus
        self.handle: int | None = None  # window base of the latest bind
        self.memory: MemoryMap | None = None
        self.frozen = False
        for what, size in (("key_size", self.key_size), ("value_size", self.value_size),
                           ("max_entries", self.max_entries)):
            if not 0 <= size < 1 << 32:
                raise self.error(errno.EINVAL, f"{what} {size} is not a u32")

    # -- properties shared by all maps -----------------------------------------------
    @property
    def read_only_prog(self) -> bool:
        """Programs may read but not write (.rodata, BPF_F_RDONLY_PROG)."""
        return self.definition.read_only or bool(self.flags & BPF_F_RDONLY_PROG)

    @property
    def spin_lock_off(self) -> int | None:
        """Offset of a ``struct bpf_spin_lock`` in the value, when the loader
        found one in the value's BTF (``definition.extra["spin_lock_off"]``)."""
        off = self.definition.extra.get("spin_lock_off")
        return off if isinstance(off, int) else None

    @property
    def value_stride(self) -> int:
        """Bytes between consecutive values in storage (8-byte aligned, as the
        kernel's array and per-CPU allocations are)."""
        return round8(self.value_size)

    @property
    def value_bytes(self) -> int:
        """Size of a value as the Python API reads and writes it whole: one
        8-byte-aligned slot per CPU for per-CPU maps, as bpf(2) does."""
        return self.value_stride * self.num_cpus if self.percpu else self.value_size

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name!r} {self.map_type} key={self.key_size} "
                f"value={self.value_size} max={self.max_entries}>")

    # -- Python API (bpf(2) semantics) ----------------------------------------------
    def lookup(self, key: Any) -> Any:
        raise self.unsupported("lookup")

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        raise self.unsupported("update")

    def delete(self, key: Any) -> None:
        raise self.unsupported("delete")

    def keys(self) -> list[bytes]:
        return []

    def items(self) -> list[tuple[bytes, Any]]:
        return [(key, self.lookup(key)) for key in self.keys()]

    def values(self) -> list[Any]:
        return [value for _, value in self.items()]

    def __len__(self) -> int:
        return len(self.keys())

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        try:
            return self.lookup(key) is not None
        except MapError:
            return False

    def freeze(self) -> None:
        """BPF_MAP_FREEZE: user space may no longer write (programs still may,
        unless the map is read-only for programs too)."""
        self.frozen = True

    # -- BPF-side API (kernel map ops called from a program) ----------------------------
    def regions(self) -> Sequence[RegionSpec]:
        """The storage a program may address, relative to the window base."""
        return ()

    def bind(self, memory: MemoryMap, window_base: int) -> None:
        """Map this map's storage into ``memory`` inside the window at
        ``window_base`` (which becomes ``handle``). Called before every run:
        the machine drops all regions between runs, the storage persists."""
        for spec in self.regions():
            base = window_base + spec.offset
            name = f"map {self.name}{spec.suffix}"
            existing = memory.get(name)
            if existing is not None:
                if existing.base == base and existing.data is spec.data:
                    continue  # already bound here
                name = f"{name} @{window_base:#x}"  # another map of the same name
            memory.add(Region(name, base, spec.data, spec.writable and not self.read_only_prog))
        self.handle = window_base
        self.memory = memory

    def lookup_address(self, key: bytes, cpu: int) -> int:
        """Address of the value stored under ``key`` (0 when there is none)."""
        return 0

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        return -ENOTSUPP

    def delete_elem(self, key: bytes) -> int:
        return -ENOTSUPP

    def push_elem(self, value: bytes, flags: int) -> int:
        return -ENOTSUPP

    def pop_elem(self) -> tuple[int, bytes]:
        """(0, value) or (-errno, bytes to store in the program's buffer)."""
        return -ENOTSUPP, b""

    def peek_elem(self) -> tuple[int, bytes]:
        return -ENOTSUPP, b""

    def value_address(self, offset: int, window_base: int | None = None) -> int:
        """What ``lddw rX, map_value i, offset`` loads (array maps only)."""
        raise self.error(errno.EINVAL, f"a {self.map_type} map has no direct value address")

    # -- for subclasses -----------------------------------------------------------
    def error(self, err: int, message: str) -> MapError:
        return MapError(err, message, self.name)

    def unsupported(self, operation: str) -> MapError:
        return self.error(ENOTSUPP, f"{operation} is not supported by a {self.map_type} map")

    def check(self, ret: int, operation: str) -> None:
        """Raise ``MapError`` for a negative kernel return value."""
        if ret < 0:
            raise self.error(-ret, f"{operation} failed")

    def key_bytes(self, key: Any) -> bytes:
        return to_bytes(key, self.key_size, "key", self.name)

    def value_of(self, value: Any) -> bytes:
        return to_bytes(value, self.value_size, "value", self.name)

    def check_user_write(self) -> None:
        """bpf(2) refuses writes to frozen maps and BPF_F_RDONLY maps (EPERM)."""
        if self.frozen or self.flags & BPF_F_RDONLY:
            raise self.error(errno.EPERM, "the map is read-only for user space")

    def check_create_flags(self, allowed: int) -> None:
        if self.flags & ~allowed:
            raise self.error(errno.EINVAL, f"map_flags {self.flags:#x} has bits a {self.map_type} map "
                                           f"does not accept ({self.flags & ~allowed:#x})")

    def window_base(self, window_base: int | None) -> int:
        base = self.handle if window_base is None else window_base
        if base is None:
            raise self.error(errno.EINVAL, "the map is not bound to a run's memory")
        return base

    def allocate(self, size: int) -> bytearray:
        """Zeroed storage of ``size`` bytes that must fit the map's window."""
        if size > MAX_STORAGE or VALUES_OFFSET + size > MAP_WINDOW:
            raise self.error(errno.ENOMEM, f"{size} bytes of storage is more than a simulated map may use "
                                           f"({MAX_STORAGE})")
        return bytearray(size)

    def store(self, buf: bytearray, offset: int, value: bytes) -> None:
        """Copy ``value`` into ``buf`` at ``offset``, leaving a spin lock word
        alone as the kernel's copy_map_value does."""
        lock = self.spin_lock_off
        end = offset + len(value)
        if lock is None or not 0 <= lock <= len(value) - 4:
            buf[offset:end] = value
            return
        buf[offset:offset + lock] = value[:lock]
        buf[offset + lock + 4:end] = value[lock + 4:]

    def store_new(self, buf: bytearray, offset: int, value: bytes) -> None:
        """``store`` into memory that becomes a new element: its spin lock
        word starts unlocked (zero), as the kernel initialises special fields."""
        self.store(buf, offset, value)
        lock = self.spin_lock_off
        if lock is not None and 0 <= lock <= len(value) - 4:
            buf[offset + lock:offset + lock + 4] = bytes(4)

    # per-CPU values from Python: one stride-sized slot per CPU
    def percpu_values(self, value: Any) -> list[bytes]:
        """A per-CPU value from Python: the kernel's layout (``value_bytes``:
        one 8-byte-aligned slot per CPU), a sequence of one value per CPU, or
        a single value (``value_size`` bytes) given to every CPU."""
        stride = self.value_stride
        if isinstance(value, (list, tuple)):
            if len(value) != self.num_cpus:
                raise self.error(errno.EINVAL, f"{len(value)} per-CPU values for {self.num_cpus} CPUs")
            return [self.value_of(v).ljust(stride, b"\0") for v in value]
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == self.value_bytes:
            raw = bytes(value)
            return [raw[i:i + stride] for i in range(0, len(raw), stride)]
        single = self.value_of(value).ljust(stride, b"\0")
        return [single] * self.num_cpus

    def split_percpu(self, raw: bytes | bytearray) -> list[bytes]:
        """Per-CPU slots (``value_stride`` each) -> list of ``value_size`` bytes."""
        stride, size = self.value_stride, self.value_size
        return [bytes(raw[i:i + size]) for i in range(0, stride * self.num_cpus, stride)]
