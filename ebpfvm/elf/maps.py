"""Map definitions of an object: BTF-defined (``.maps``), legacy (``maps``)
and global data (``.data``, ``.rodata``, ``.bss`` and their ``.name``
variants), in libbpf's order.

Each becomes a ``MapDefinition`` plus where it sits in the ELF file, so the
relocation pass can turn "lddw against symbol X" into "map i".

BTF-defined maps are anonymous structs whose members encode numbers as
array sizes (``__uint(max_entries, 64)`` is ``int (*max_entries)[64]``) and
types as pointers (``__type(key, struct k)`` is ``struct k *key``); a last
member ``values`` (``__array``) declares prog_array programs or, for
map-in-map, the inner map's definition, and relocations in ``.rel.maps``
fill its slots.  See libbpf's parse_btf_map_def.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from ebpfvm.btf import Btf, BtfError, Kind, skip_modifiers, type_size
from ebpfvm.btf.resolve import spin_lock_offset
from ebpfvm.btf.types import Array, Datasec, Ptr, Struct, Var
from ebpfvm.kernel.constants import MAP_TYPE_NAMES
from ebpfvm.maps.definition import MapDefinition

from .errors import MapDefinitionError
from .reader import ElfReader, Section, Symbol

MAPS_SECTION = ".maps"
LEGACY_SECTION = "maps"
DATA_PREFIXES = (".data", ".rodata", ".bss")
MAX_GLOBAL_DATA = 1 << 26  # a global data map beyond this is not a real program's
_LEGACY_FIELDS = ("map_type", "key_size", "value_size", "max_entries", "flags")
_LEGACY_MIN = 16  # type, key_size, value_size, max_entries
_MAP_IN_MAP = ("array_of_maps", "hash_of_maps")
# Types whose key and value are always 4 bytes (an index and an fd / cpu slot).
_FD_VALUED = ("prog_array", "perf_event_array", "cgroup_array", *_MAP_IN_MAP)


@dataclass(frozen=True)
class PlacedMap:
    """A map definition and the bytes of the ELF file it was read from."""

    definition: MapDefinition
    section: int
    offset: int
    size: int
    origin: str  # "btf", "legacy" or "data"


@dataclass
class _BtfMapDef:
    fields: dict[str, int] = field(default_factory=dict)
    key_type: int = 0
    value_type: int = 0
    inner: "_BtfMapDef | None" = None
    values_offset: int | None = None  # byte offset of the ``values`` member
    values_of: str | None = None  # "prog" or "map"
    unknown: list[str] = field(default_factory=list)


def is_data_section(section: Section) -> bool:
    if section.executable or section.type not in ("SHT_PROGBITS", "SHT_NOBITS"):
        return False
    return any(section.name == p or section.name.startswith(p + ".") for p in DATA_PREFIXES)


def collect_maps(reader: ElfReader, btf: Btf | None) -> list[PlacedMap]:
    """Every map of the object in index order: BTF-defined, legacy, global data."""
    maps: list[PlacedMap] = []
    btf_section = reader.by_name(MAPS_SECTION)
    if btf_section is not None:
        maps += _btf_maps(reader, btf, btf_section)
    legacy = reader.by_name(LEGACY_SECTION)
    if legacy is not None:
        maps += _legacy_maps(reader, legacy, btf)
    for section in reader.sections:
        if is_data_section(section) and section.size > 0:
            maps.append(_data_map(reader, section, btf))
    names = [m.definition.name for m in maps]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise MapDefinitionError(reader.path, f"two maps are named {dup!r}")
    return maps


def map_type_name(number: int, path: str, section: str, offset: int) -> str:
    if not 0 < number < len(MAP_TYPE_NAMES):
        raise MapDefinitionError(path, f"unknown map type {number}", section=section, offset=offset)
    return MAP_TYPE_NAMES[number]


# -- BTF-defined maps --------------------------------------------------------

def _btf_maps(reader: ElfReader, btf: Btf | None, section: Section) -> list[PlacedMap]:
    path = reader.path
    if btf is None:
        raise MapDefinitionError(path, "BTF-defined maps need a .BTF section to describe them",
                                 section=section.name)
    datasec = btf.find(MAPS_SECTION, Kind.DATASEC)
    if not isinstance(datasec, Datasec):
        raise MapDefinitionError(path, ".BTF has no DATASEC describing .maps", section=section.name)
    variables: dict[str, Var] = {}
    for info in datasec.vars:
        var = btf[info.type]
        if not isinstance(var, Var):
            raise MapDefinitionError(path, f"DATASEC .maps entry [{info.type}] is a {var.kind.name}, not a VAR",
                                     section=".BTF")
        variables[var.name] = var
    symbols = sorted((s for s in reader.symbols_in(section.index) if s.type == "STT_OBJECT"),
                     key=lambda s: (s.value, s.index))
    placed: list[PlacedMap] = []
    parsed: dict[str, _BtfMapDef] = {}
    for sym in symbols:
        _check_symbol_bounds(reader, section, sym)
        var = variables.get(sym.name)
        if var is None:
            raise MapDefinitionError(path, f"map {sym.name!r} has no VAR in the .maps DATASEC",
                                     section=section.name, offset=sym.value)
        where = (section.name, sym.value)
        try:
            definition_type = skip_modifiers(btf, var.type)
            if not isinstance(definition_type, Struct):
                raise MapDefinitionError(path, f"map {sym.name!r} is a {definition_type.kind.name}, "
                                         f"not a struct", section=section.name, offset=sym.value)
            raw = _parse_btf_def(btf, definition_type, inner_allowed=True)
            defn = _btf_definition(btf, sym.name, raw, path, where)
        except BtfError as e:
            raise MapDefinitionError(path, f"map {sym.name!r}: {e.message}", section=section.name,
                                     offset=sym.value) from None
        parsed[sym.name] = raw
        placed.append(PlacedMap(defn, section.index, sym.value, sym.size, "btf"))
    if set(variables) - {s.name for s in symbols}:
        missing = sorted(set(variables) - {s.name for s in symbols})[0]
        raise MapDefinitionError(path, f"map {missing!r} is in the .maps DATASEC but has no symbol",
                                 section=section.name)
    return _with_initial_slots(reader, section, placed, parsed)


def _check_symbol_bounds(reader: ElfReader, section: Section, sym: Symbol) -> None:
    if sym.value > section.size or sym.size > section.size - sym.value:
        raise MapDefinitionError(reader.path, f"map {sym.name!r} [{sym.value:#x}, +{sym.size:#x}) lies "
                                 f"outside the section ({section.size:#x} bytes)", section=section.name,
                                 offset=sym.value)


def _field_int(btf: Btf, member_type: int, name: str) -> int:
    """``__uint(name, N)`` is ``int (*name)[N]``: N is the array's element count."""
    ptr = skip_modifiers(btf, member_type)
    if not isinstance(ptr, Ptr):
        raise BtfError(f"attribute {name!r} is a {ptr.kind.name}, expected a pointer to an array")
    array = btf[ptr.type]
    if not isinstance(array, Array):
        raise BtfError(f"attribute {name!r} points to a {array.kind.name}, expected an array")
    return array.nelems


_INT_FIELDS = {"type": "map_type", "max_entries": "max_entries", "map_flags": "flags",
               "numa_node": "numa_node", "key_size": "key_size", "value_size": "value_size",
               "pinning": "pinning", "map_extra": "map_extra"}


def _parse_btf_def(btf: Btf, struct_type: Struct, inner_allowed: bool) -> _BtfMapDef:
    out = _BtfMapDef()
    for position, member in enumerate(struct_type.members):
        if member.name in _INT_FIELDS:
            out.fields[_INT_FIELDS[member.name]] = _field_int(btf, member.type, member.name)
        elif member.name in ("key", "value"):
            ptr = btf[member.type]
            if not isinstance(ptr, Ptr):
                raise BtfError(f"{member.name} is a {ptr.kind.name}, expected a pointer (__type)")
            size = type_size(btf, ptr.type)
            declared = out.fields.get(f"{member.name}_size")
            if declared is not None and declared != size:
                raise BtfError(f"{member.name}_size {declared} disagrees with the {member.name} type's size {size}")
            out.fields[f"{member.name}_size"] = size
            setattr(out, f"{member.name}_type", ptr.type)
        elif member.name == "values":
            if not inner_allowed:
                raise BtfError("an inner map definition cannot have values")
            if position != len(struct_type.members) - 1:
                raise BtfError("'values' must be the last member")
            array = btf[member.type]
            if not isinstance(array, Array) or array.nelems != 0:
                raise BtfError("'values' must be a flexible array of pointers (__array)")
            ptr = skip_modifiers(btf, array.type)
            if not isinstance(ptr, Ptr):
                raise BtfError(f"'values' elements are {ptr.kind.name}, expected pointers")
            target = skip_modifiers(btf, ptr.type)
            out.values_offset = member.bit_offset // 8
            if target.kind is Kind.FUNC_PROTO:
                out.values_of = "prog"
            elif isinstance(target, Struct):
                out.values_of = "map"
                out.inner = _parse_btf_def(btf, target, inner_allowed=False)
            else:
                raise BtfError(f"'values' point to a {target.kind.name}, expected a map struct or a function")
        else:
            out.unknown.append(member.name)
    return out


def _btf_definition(btf: Btf, name: str, raw: _BtfMapDef, path: str, where: tuple[str, int]) -> MapDefinition:
    fields = raw.fields
    if "map_type" not in fields:
        raise MapDefinitionError(path, f"map {name!r} has no type", section=where[0], offset=where[1])
    map_type = map_type_name(fields["map_type"], path, *where)
    key_size, value_size = fields.get("key_size", 0), fields.get("value_size", 0)
    inner = None
    if raw.values_of == "prog" and map_type != "prog_array":
        raise MapDefinitionError(path, f"map {name!r}: program 'values' on a {map_type}", section=where[0],
                                 offset=where[1])
    if raw.values_of == "map" or map_type in _MAP_IN_MAP:
        if map_type not in _MAP_IN_MAP:
            raise MapDefinitionError(path, f"map {name!r}: inner map 'values' on a {map_type}",
                                     section=where[0], offset=where[1])
        if raw.inner is None:
            raise MapDefinitionError(path, f"map {name!r}: a {map_type} needs 'values' describing its inner map",
                                     section=where[0], offset=where[1])
        inner = _btf_definition(btf, f"{name}.inner", raw.inner, path, where)
    if map_type in _FD_VALUED:
        key_size, value_size = key_size or 4, value_size or 4
    extra: dict = {k: v for k, v in fields.items() if k in ("numa_node", "map_extra")}
    lock = spin_lock_offset(btf, raw.value_type)
    if lock is not None:
        extra["spin_lock_off"] = lock
    if raw.unknown:
        extra["unknown_attributes"] = tuple(raw.unknown)
    return MapDefinition(
        name=name, map_type=map_type, key_size=key_size, value_size=value_size,
        max_entries=fields.get("max_entries", 0), flags=fields.get("flags", 0),
        pinning=fields.get("pinning", 0), inner=inner,
        btf_key_type_id=raw.key_type, btf_value_type_id=raw.value_type, extra=extra)


def _with_initial_slots(reader: ElfReader, section: Section, placed: list[PlacedMap],
                        parsed: dict[str, _BtfMapDef]) -> list[PlacedMap]:
    """Fill ``initial_slots`` from .rel.maps: each entry points a slot of some
    map's ``values`` at a program (prog_array) or another map (map-in-map)."""
    found = reader.relocations_for(section)
    if found is None:
        return placed
    rel_name, relocations = found
    slots: dict[str, dict[int, str]] = {}
    for rel in relocations:
        owner = next((p for p in placed if p.offset <= rel.offset < p.offset + max(p.size, 1)), None)
        if owner is None:
            raise MapDefinitionError(reader.path, f"relocation at {rel.offset:#x} is inside no map",
                                     section=rel_name, offset=rel.entry_offset)
        defn, raw = owner.definition, parsed[owner.definition.name]
        where = f"map {defn.name!r}"
        if raw.values_offset is None:
            raise MapDefinitionError(reader.path, f"relocation into {where}, which has no 'values'",
                                     section=rel_name, offset=rel.entry_offset)
        rel_in_values = rel.offset - owner.offset - raw.values_offset
        if rel_in_values < 0 or rel_in_values % 8:
            raise MapDefinitionError(reader.path, f"relocation at {rel.offset:#x} is not a 'values' slot "
                                     f"of {where}", section=rel_name, offset=rel.entry_offset)
        slot = rel_in_values // 8
        if slot >= defn.max_entries:
            raise MapDefinitionError(reader.path, f"'values' slot {slot} of {where} is beyond its "
                                     f"max_entries {defn.max_entries}", section=rel_name, offset=rel.entry_offset)
        sym = reader.symbol(rel.symbol, rel_name, rel.entry_offset)
        if raw.values_of == "prog":
            target_ok = sym.type == "STT_FUNC" and reader.section(sym.shndx if sym.defined else 0).executable
        else:
            target_ok = sym.defined and sym.shndx == section.index and sym.type == "STT_OBJECT"
        if not target_ok:
            expected = "an entry-point program" if raw.values_of == "prog" else "a BTF-defined map"
            raise MapDefinitionError(reader.path, f"slot {slot} of {where} names {sym.name!r}, "
                                     f"which is not {expected}", section=rel_name, offset=rel.entry_offset)
        slots.setdefault(defn.name, {})[slot] = sym.name
    out = []
    for p in placed:
        if p.definition.name in slots:
            filled = tuple(sorted(slots[p.definition.name].items()))
            p = PlacedMap(replace(p.definition, initial_slots=filled), p.section, p.offset, p.size, p.origin)
        out.append(p)
    return out


# -- legacy ``maps`` section ------------------------------------------------

def _legacy_maps(reader: ElfReader, section: Section, btf: Btf | None) -> list[PlacedMap]:
    """``struct bpf_map_def { u32 type, key_size, value_size, max_entries, map_flags; ... }``,
    one per symbol; every definition has the same size (section size / symbols)."""
    path = reader.path
    if section.type != "SHT_PROGBITS":
        raise MapDefinitionError(path, f"legacy maps section is {section.type}", section=section.name)
    symbols = sorted((s for s in reader.symbols_in(section.index) if s.type in ("STT_OBJECT", "STT_NOTYPE")
                      and s.name), key=lambda s: (s.value, s.index))
    if not symbols:
        return []
    def_size = section.size // len(symbols)
    if def_size < _LEGACY_MIN or def_size % 4 or def_size * len(symbols) != section.size:
        raise MapDefinitionError(path, f"{len(symbols)} map symbol(s) in {section.size} bytes: not a whole "
                                 f"number of map definitions of at least {_LEGACY_MIN} bytes", section=section.name)
    placed = []
    for sym in symbols:
        if sym.value % def_size or sym.value + def_size > section.size:
            raise MapDefinitionError(path, f"map {sym.name!r} at {sym.value:#x} is not at a definition "
                                     f"boundary ({def_size}-byte definitions)", section=section.name,
                                     offset=sym.value)
        count = min(def_size, 4 * len(_LEGACY_FIELDS)) // 4
        values = struct.unpack_from(f"<{count}I", section.data, sym.value)
        fields = dict(zip(_LEGACY_FIELDS, values))
        map_type = map_type_name(fields["map_type"], path, section.name, sym.value)
        extra = {"legacy_def_size": def_size}
        placed.append(PlacedMap(MapDefinition(
            name=sym.name, map_type=map_type, key_size=fields["key_size"], value_size=fields["value_size"],
            max_entries=fields["max_entries"], flags=fields.get("flags", 0), extra=extra),
            section.index, sym.value, def_size, "legacy"))
    return placed


# -- global data ------------------------------------------------------------

def _data_map(reader: ElfReader, section: Section, btf: Btf | None) -> PlacedMap:
    """A one-entry array holding the section's bytes; .rodata* is read-only for programs."""
    if section.size > MAX_GLOBAL_DATA:
        raise MapDefinitionError(reader.path, f"global data section of {section.size} bytes is larger than "
                                 f"{MAX_GLOBAL_DATA}", section=section.name)
    initial = section.data if section.type == "SHT_PROGBITS" else bytes(section.size)
    value_type = 0
    if btf is not None:
        datasec = btf.find(section.name, Kind.DATASEC)
        value_type = datasec.id if datasec is not None else 0
    defn = MapDefinition(name=section.name, map_type="array", key_size=4, value_size=section.size,
                         max_entries=1, initial_value=initial, read_only=section.name.startswith(".rodata"),
                         btf_value_type_id=value_type, extra={"global_data": True})
    return PlacedMap(defn, section.index, 0, section.size, "data")
