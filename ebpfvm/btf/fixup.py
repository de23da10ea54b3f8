"""Make an object's .BTF acceptable to the kernel's BTF_LOAD.

clang leaves DATASEC sizes and variable offsets at 0: only the linker (here,
the loader) knows section sizes and symbol values.  The kernel refuses such
DATASECs, so, as libbpf's btf_fixup_datasec does, a copy of the section gets
each DATASEC's size from the ELF section of that name and each variable's
offset from its symbol, with the variables sorted by offset.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from .errors import BtfError
from .types import Btf, Datasec

_U32 = struct.Struct("<I")
_SECINFO = struct.Struct("<III")
_TYPE_SIZE = 12


def _u32(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFF_FFFF:
        raise BtfError(f"{what} ({value:#x}) does not fit in BTF's 32 bits")
    return value


def fixup_datasecs(data: bytes, btf: Btf, section_sizes: Mapping[str, int],
                   symbol_offsets: Mapping[tuple[str, str], int]) -> bytes:
    """A copy of .BTF ``data`` (parsed as ``btf``) with DATASECs filled in.

    ``section_sizes`` maps an ELF section name to its size, ``symbol_offsets``
    (section name, symbol name) to the symbol's value.  A DATASEC naming no
    section, or a variable without a symbol, is a ``BtfError``."""
    out = bytearray(data)
    for t in btf.types:
        if not isinstance(t, Datasec):
            continue
        if t.name not in section_sizes:
            raise BtfError(f"DATASEC {t.name!r} describes a section the object does not have")
        pos = btf.positions[t.id]
        _U32.pack_into(out, pos + 8, _u32(section_sizes[t.name], f"size of section {t.name!r}"))
        infos = []
        for info in t.vars:
            var = btf[info.type]
            offset = symbol_offsets.get((t.name, var.name))
            if offset is None:
                raise BtfError(f"DATASEC {t.name!r}: variable {var.name!r} has no symbol")
            infos.append((_u32(offset, f"offset of {var.name!r}"), info.type, info.size))
        infos.sort()
        for i, (offset, type_id, size) in enumerate(infos):
            _SECINFO.pack_into(out, pos + _TYPE_SIZE + i * _SECINFO.size, type_id, offset, size)
    return bytes(out)
