"""Kernel BPF maps: create one, read and write its elements from user space."""

from __future__ import annotations

import ctypes
import errno as _errno
import functools
from collections.abc import Iterator

from ebpfvm.kernel import syscall as sc
from ebpfvm.kernel.constants import PERCPU_MAP_TYPES, map_type_name, map_type_number
from ebpfvm.kernel.fd import OwnedFd
from ebpfvm.kernel.errors import KernelArgumentError, KernelError
from ebpfvm.kernel.info import MapInfo, map_info


@functools.lru_cache(maxsize=1)
def possible_cpus() -> int:
    """Number of possible CPUs, the count of slots in a per-CPU map value.

    The kernel sizes per-CPU values by *possible* (not online) CPUs; the list
    is like ``0-3`` or ``0,2-5``.
    """
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += (int(hi) if hi else int(lo)) - int(lo) + 1
    return count


class KernelMap(OwnedFd):
    """A map the kernel created; owns its fd (context manager, ``close()``,
    closed on garbage collection as a safety net).

    Keys and values are raw bytes of exactly ``key_size`` and
    ``value_bytes`` bytes; for per-CPU maps a value is one 8-byte-aligned
    slot per possible CPU, concatenated.
    """

    _what = "map"

    def __init__(self, fd: int, map_type: int, key_size: int, value_size: int,
                 max_entries: int, flags: int = 0, name: str = "") -> None:
        super().__init__(fd)
        self.map_type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.name = name

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return (f"<KernelMap {map_type_name(self.map_type)} key={self.key_size} "
                f"value={self.value_size} max={self.max_entries} {state}>")

    # --- element access ----------------------------------------------------

    @property
    def value_bytes(self) -> int:
        """Size of a value as user space reads and writes it."""
        if self.map_type in PERCPU_MAP_TYPES:
            return ((self.value_size + 7) & ~7) * possible_cpus()
        return self.value_size

    def _key_buf(self, key: bytes | None, argument: str = "key") -> ctypes.Array | None:  # type: ignore[type-arg]
        if key is None:
            return None
        if len(key) != self.key_size:
            raise KernelArgumentError(argument, f"{len(key)} bytes, map key_size is {self.key_size}")
        return ctypes.create_string_buffer(bytes(key), len(key)) if key else None

    def _elem(self, cmd: int, key: ctypes.Array | None, value: ctypes.Array | None,  # type: ignore[type-arg]
              flags: int = 0) -> int:
        attr = sc.MapElemAttr(map_fd=self.fd, key=sc.address_of(key),
                              value=sc.address_of(value), flags=flags)
        while True:
            _ret, err = sc.bpf_raw(cmd, attr)
            if err != _errno.EINTR:
                return err

    def lookup(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None if there is none."""
        kbuf = self._key_buf(key)
        vbuf = ctypes.create_string_buffer(self.value_bytes)
        err = self._elem(sc.BPF_MAP_LOOKUP_ELEM, kbuf, vbuf)
        if err == _errno.ENOENT:
            return None
        if err:
            raise KernelError(err, "BPF_MAP_LOOKUP_ELEM")
        return vbuf.raw

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        """Store ``value`` under ``key``; ``flags`` BPF_ANY/NOEXIST/EXIST."""
        kbuf = self._key_buf(key)
        if len(value) != self.value_bytes:
            raise KernelArgumentError("value", f"{len(value)} bytes, map value needs {self.value_bytes}")
        vbuf = ctypes.create_string_buffer(bytes(value), len(value))
        err = self._elem(sc.BPF_MAP_UPDATE_ELEM, kbuf, vbuf, flags)
        if err:
            raise KernelError(err, "BPF_MAP_UPDATE_ELEM")

    def lookup_and_delete(self, key: bytes) -> bytes | None:
        """BPF_MAP_LOOKUP_AND_DELETE_ELEM: the value under ``key``, removed
        (None if there is none). For a queue or stack (key ``b""``): pop."""
        vbuf = ctypes.create_string_buffer(self.value_bytes)
        err = self._elem(sc.BPF_MAP_LOOKUP_AND_DELETE_ELEM, self._key_buf(key), vbuf)
        if err == _errno.ENOENT:
            return None
        if err:
            raise KernelError(err, "BPF_MAP_LOOKUP_AND_DELETE_ELEM")
        return vbuf.raw

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; False if it was not there.  (Arrays cannot delete:
        KernelError EINVAL.)"""
        err = self._elem(sc.BPF_MAP_DELETE_ELEM, self._key_buf(key), None)
        if err == _errno.ENOENT:
            return False
        if err:
            raise KernelError(err, "BPF_MAP_DELETE_ELEM")
        return True

    def keys(self) -> Iterator[bytes]:
        """Every key, in the kernel's order, via BPF_MAP_GET_NEXT_KEY.

        Bounded by max_entries + 1 steps: when a hash map's current key is
        deleted concurrently the kernel restarts from the first key, which
        could otherwise loop for ever.
        """
        current: ctypes.Array | None = None  # type: ignore[type-arg]
        for _ in range(self.max_entries + 1):
            nxt = ctypes.create_string_buffer(self.key_size)
            err = self._elem(sc.BPF_MAP_GET_NEXT_KEY, current, nxt)
            if err == _errno.ENOENT:
                return
            if err:
                raise KernelError(err, "BPF_MAP_GET_NEXT_KEY")
            yield nxt.raw
            current = nxt

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs; keys deleted while iterating are skipped."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def dump(self) -> dict[bytes, bytes]:
        return dict(self.items())

    def info(self) -> MapInfo:
        return map_info(self.fd)


def create_map(
    map_type: int | str,
    key_size: int,
    value_size: int,
    max_entries: int,
    flags: int = 0,
    name: str = "",
    *,
    inner_map_fd: int = 0,
    numa_node: int = 0,
    map_extra: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
) -> KernelMap:
    """BPF_MAP_CREATE; KernelError (EINVAL for bad sizes/flags, EPERM...) on
    failure.  ``name`` is cut to 15 bytes and may hold only [A-Za-z0-9_.].
    ``btf_*`` describe key and value with loaded BTF (needed for values that
    hold special fields such as a bpf_spin_lock)."""
    mtype = map_type_number(map_type)
    name_bytes = name.encode()[: sc.BPF_OBJ_NAME_LEN - 1]
    attr = sc.MapCreateAttr(
        map_type=mtype,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        inner_map_fd=inner_map_fd,
        numa_node=numa_node,
        map_name=name_bytes,
        map_extra=map_extra,
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
    )
    fd = sc.bpf(sc.BPF_MAP_CREATE, attr)
    return KernelMap(fd, mtype, key_size, value_size, max_entries, flags, name_bytes.decode())
