"""Load a whole ``BpfObject`` into the kernel: its maps, then its programs.

This is what libbpf's bpf_object__load does for our objects, minus what
needs the running kernel's BTF (CO-RE, fentry/lsm attach targets, kfuncs):

* every ``MapDefinition`` becomes a kernel map, in index order; global data
  maps get their initial value, and ``.rodata`` is created with
  BPF_F_RDONLY_PROG and frozen so the verifier may treat it as constant;
  map-in-map outers are created against a template of their inner map and
  get their ``.values`` slots filled;
* each program has its lddw map indices rewritten to the new fds and is
  loaded with its program type, expected attach type and license; programs
  named in a prog_array's ``.values`` are loaded too and put in their slots,
  so tail calls work.

``test_run_in_kernel`` does all that in a forked child (see
:mod:`.isolation`), writes ``map_setup`` entries, runs the program once with
BPF_PROG_TEST_RUN and brings back its return value, output packet and every
map's contents: the kernel's side of a differential test.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from ebpfvm.kernel import syscall as sc
from ebpfvm.kernel.constants import BPF_F_RDONLY_PROG
from ebpfvm.kernel.btf import LoadedBtf, load_btf
from ebpfvm.kernel.errors import KernelArgumentError, KernelError, KernelVerifierError
from ebpfvm.kernel.isolation import run_in_child
from ebpfvm.kernel.log import VerifierStats
from ebpfvm.kernel.maps import KernelMap, create_map, possible_cpus
from ebpfvm.kernel.prog import LoadedProgram, load_program, relocate_map_indices
from ebpfvm.maps.definition import MapDefinition

if TYPE_CHECKING:
    from ebpfvm.elf import BpfObject, ProgramDetails
    from ebpfvm.program import Program

_MAP_IN_MAP = ("array_of_maps", "hash_of_maps")
# Maps whose elements user space cannot read back as plain bytes.
_NOT_DUMPABLE = frozenset({"prog_array", "perf_event_array", "ringbuf", "user_ringbuf", "array_of_maps",
                           "hash_of_maps", "queue", "stack", "stack_trace", "cgroup_array", "sockmap",
                           "sockhash", "devmap", "devmap_hash", "cpumap", "xskmap", "struct_ops",
                           "bloom_filter", "sk_storage", "inode_storage", "task_storage", "cgrp_storage",
                           "cgroup_storage", "percpu_cgroup_storage", "reuseport_sockarray", "arena"})
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.]")


def kernel_object_name(name: str) -> str:
    """The kernel allows 15 bytes of [A-Za-z0-9_.] in a map or program name."""
    return _NAME_CHARS.sub("_", name)[: sc.BPF_OBJ_NAME_LEN - 1]


def freeze_map(kmap: KernelMap) -> None:
    """BPF_MAP_FREEZE: no more writes from user space (programs: per the map's flags)."""
    sc.bpf(sc.BPF_MAP_FREEZE, sc.MapElemAttr(map_fd=kmap.fd))


def _btf_ids(defn: MapDefinition, btf: LoadedBtf | None) -> dict[str, int]:
    """BTF for BPF_MAP_CREATE, given only where the kernel requires it: values
    with a bpf_spin_lock (other maps load the same without, and need no BTF)."""
    if btf is None or "spin_lock_off" not in defn.extra or not defn.btf_value_type_id:
        return {}
    return {"btf_fd": btf.fd, "btf_key_type_id": defn.btf_key_type_id,
            "btf_value_type_id": defn.btf_value_type_id}


def _create_one(defn: MapDefinition, inner_map_fd: int = 0, btf: LoadedBtf | None = None) -> KernelMap:
    flags = defn.flags | (BPF_F_RDONLY_PROG if defn.read_only else 0)
    max_entries = defn.max_entries
    if defn.map_type == "perf_event_array" and max_entries == 0:
        max_entries = possible_cpus()  # libbpf's default: one slot per CPU
    kmap = create_map(defn.map_type, defn.key_size, defn.value_size, max_entries, flags,
                      kernel_object_name(defn.name), inner_map_fd=inner_map_fd, **_btf_ids(defn, btf))
    try:
        if defn.initial_value is not None:
            kmap.update(bytes(defn.key_size), defn.initial_value)
        if defn.read_only:
            freeze_map(kmap)
    except BaseException:
        kmap.close()
        raise
    return kmap


def create_object_maps(maps: Sequence[MapDefinition], btf: LoadedBtf | None = None) -> list[KernelMap]:
    """Kernel maps for ``maps`` (index i for definition i), initial values and
    map-in-map slots written, described by the object's ``btf`` where needed.
    On failure the maps made so far are closed."""
    created: list[KernelMap] = []
    try:
        for defn in maps:
            if defn.inner is not None:
                # The template only tells the kernel what inner maps look like;
                # libbpf closes it too once the outer map exists.
                with _create_one(defn.inner, btf=btf) as template:
                    created.append(_create_one(defn, inner_map_fd=template.fd, btf=btf))
            else:
                created.append(_create_one(defn, btf=btf))
        by_name = {defn.name: kmap for defn, kmap in zip(maps, created)}
        for defn, kmap in zip(maps, created):
            if defn.map_type in _MAP_IN_MAP:
                for slot, target in defn.initial_slots:
                    set_map_slot(kmap, slot, by_name[target])
    except BaseException:
        for kmap in created:
            kmap.close()
        raise
    return created


def _key(kmap: KernelMap, slot: int) -> bytes:
    return slot.to_bytes(kmap.key_size, "little")


def set_map_slot(outer: KernelMap, slot: int | bytes, inner: KernelMap) -> None:
    """Put ``inner`` in map-in-map ``outer`` under ``slot`` (an index or a raw key)."""
    key = slot if isinstance(slot, bytes) else _key(outer, slot)
    outer.update(key, struct.pack("<I", inner.fd))


def set_prog_slot(prog_array: KernelMap, slot: int | bytes, prog: LoadedProgram) -> None:
    key = slot if isinstance(slot, bytes) else _key(prog_array, slot)
    prog_array.update(key, struct.pack("<I", prog.fd))


@dataclass(frozen=True)
class ProgramBtf:
    """The BTF description of one program for BPF_PROG_LOAD."""

    btf_fd: int
    func_info: bytes
    line_info: bytes

    @classmethod
    def of(cls, btf: LoadedBtf | None, details: "ProgramDetails") -> "ProgramBtf | None":
        if btf is None or not details.func_info:
            return None
        return cls(btf.fd, b"".join(struct.pack("<II", *rec) for rec in details.func_info),
                   b"".join(struct.pack("<IIII", *rec) for rec in details.btf_line_info))


def load_object_program(program: "Program", maps: Sequence[KernelMap], *, log_level: int = 1,
                        stats: bool = True, core_relocations: int = 0, attach_btf: bool = False,
                        btf: ProgramBtf | None = None) -> LoadedProgram:
    """BPF_PROG_LOAD one program of an object whose maps are ``maps``,
    described by ``btf`` when given (needed for callbacks)."""
    what = f"program {program.name!r}"
    if program.prog_type is None:
        raise KernelArgumentError("prog_type", f"{what}: section {program.section!r} names no program type")
    if core_relocations:
        raise KernelArgumentError("program", f"{what} needs {core_relocations} CO-RE relocation(s) against the "
                                  f"kernel's BTF, which ebpfvm does not apply")
    if attach_btf:
        raise KernelArgumentError("program", f"{what} ({program.section}) attaches by kernel BTF id, which "
                                  f"ebpfvm does not resolve")
    insns = program.to_bytes()
    if maps:
        insns = relocate_map_indices(insns, [m.fd for m in maps])
    return load_program(insns, program.prog_type, license=program.license,
                        log_level=log_level, stats=stats,
                        expected_attach_type=program.expected_attach_type or 0,
                        name=kernel_object_name(program.name),
                        prog_btf_fd=btf.btf_fd if btf else 0,
                        func_info=btf.func_info if btf else b"",
                        line_info=btf.line_info if btf else b"")


def load_object_btf(obj: "BpfObject") -> tuple[LoadedBtf | None, str]:
    """The object's BTF in the kernel, or (None, why not).  Optional, as for
    libbpf: only programs that need it (callbacks) then fail to load."""
    if obj.kernel_btf is None:
        return None, obj.kernel_btf_problem
    try:
        return load_btf(obj.kernel_btf), ""
    except KernelError as e:
        return None, str(e)


@dataclass
class LoadedObject:
    """An object's kernel maps (``maps[i]`` for ``obj.maps[i]``) and loaded
    programs; ``btf`` is its BTF in the kernel (None: ``btf_problem`` says why)."""

    obj: "BpfObject"
    maps: list[KernelMap]
    programs: dict[str, LoadedProgram] = field(default_factory=dict)
    btf: LoadedBtf | None = None
    btf_problem: str = ""

    def load(self, name: str, *, log_level: int = 1, stats: bool = True) -> LoadedProgram:
        """Load program ``name`` of the object (once) against these maps."""
        name = self.obj.program(name).name
        if name not in self.programs:
            details = self.obj.program_details(name)
            self.programs[name] = load_object_program(
                self.obj.program(name), self.maps, log_level=log_level, stats=stats,
                core_relocations=len(details.core_relocations),
                attach_btf=bool(details.section_def and details.section_def.attach_btf),
                btf=ProgramBtf.of(self.btf, details))
        return self.programs[name]

    def map(self, name: str) -> KernelMap:
        return self.maps[self.obj.map_index(name)]

    def dump_maps(self) -> dict[str, dict[bytes, bytes] | None]:
        """Every map's contents; None for maps whose values are not data."""
        return {defn.name: (None if defn.map_type in _NOT_DUMPABLE else kmap.dump())
                for defn, kmap in zip(self.obj.maps, self.maps)}

    def close(self) -> None:
        for prog in self.programs.values():
            prog.close()
        for kmap in self.maps:
            kmap.close()
        if self.btf is not None:
            self.btf.close()

    def __enter__(self) -> "LoadedObject":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_object(obj: "BpfObject") -> LoadedObject:
    """The object's BTF (when the kernel takes it) and maps, no programs yet."""
    btf, problem = load_object_btf(obj)
    try:
        maps = create_object_maps(obj.maps, btf)
    except BaseException:
        if btf is not None:
            btf.close()
        raise
    return LoadedObject(obj, maps, btf=btf, btf_problem=problem)


def _needed_programs(obj: "BpfObject", program_name: str | None) -> list[str]:
    """The named program and every program a prog_array of the object starts with."""
    if program_name is None:
        return [p.name for p in obj.programs]
    names = [obj.program(program_name).name]
    for defn in obj.maps:
        if defn.map_type == "prog_array":
            names += [target for _, target in defn.initial_slots if target not in names]
    return names


def load_object_in_kernel(obj: "BpfObject", program_name: str | None = None, *, log_level: int = 1,
                          stats: bool = True) -> LoadedObject:
    """Create ``obj``'s maps and load ``program_name`` (every program when
    None) plus the programs its prog_arrays name, filling those slots.
    Raises KernelVerifierError for the first program the kernel refuses."""
    loaded = open_object(obj)
    kmaps = loaded.maps
    try:
        for name in _needed_programs(obj, program_name):
            loaded.load(name, log_level=log_level, stats=stats)
        for defn, kmap in zip(obj.maps, kmaps):
            if defn.map_type == "prog_array":
                for slot, target in defn.initial_slots:
                    if target in loaded.programs:
                        set_prog_slot(kmap, slot, loaded.programs[target])
    except BaseException:
        loaded.close()
        raise
    return loaded


# -- verdicts and test runs (in a child) -------------------------------------

@dataclass(frozen=True)
class ProgramVerdict:
    """The kernel's answer to loading one program of an object."""

    name: str
    accepted: bool
    error_line: str = ""
    errno: int = 0
    stats: VerifierStats | None = None
    log_tail: str = ""
    btf_loaded: bool = False  # the program was loaded with the object's BTF
    skipped: bool = False  # not offered to the kernel: ebpfvm cannot load it (``error_line`` says why)


def _verdicts(obj: "BpfObject") -> dict[str, ProgramVerdict]:
    out: dict[str, ProgramVerdict] = {}
    with open_object(obj) as loaded:
        for program in obj.programs:
            try:
                prog = loaded.load(program.name)
                out[program.name] = ProgramVerdict(program.name, True, stats=prog.stats,
                                                   btf_loaded=loaded.btf is not None)
            except KernelVerifierError as e:
                tail = "\n".join(e.log.splitlines()[-20:])
                out[program.name] = ProgramVerdict(program.name, False, e.error_line, e.errno, e.stats, tail,
                                                   loaded.btf is not None)
            except KernelArgumentError as e:  # refused before asking the kernel (CO-RE, no type...)
                out[program.name] = ProgramVerdict(program.name, False, e.message, skipped=True)
    return out


def verify_object_in_kernel(obj: "BpfObject", *, isolated: bool = True,
                            timeout: float = 60.0) -> dict[str, ProgramVerdict]:
    """Load every program of ``obj`` (with its maps) and report each verdict;
    in a forked child unless ``isolated=False``."""
    if not isolated:
        return _verdicts(obj)
    return run_in_child(_verdicts, obj, timeout=timeout)


@dataclass(frozen=True)
class KernelObjectRun:
    """One BPF_PROG_TEST_RUN of an object's program: r0 (as the kernel's u32),
    the packet after the run, the context after the run (if one was given),
    and every map's contents (None for maps that hold no plain data)."""

    retval: int
    packet_out: bytes
    ctx_out: bytes | None
    maps: dict[str, dict[bytes, bytes] | None]


# map_setup: map name -> {key: value}.  A value may name another map of the
# object (for array_of_maps / hash_of_maps) or a program (for prog_array)
# instead of giving bytes; such programs are loaded too.
MapSetup = Mapping[str, Mapping[bytes, "bytes | str"]]


def _apply_setup(loaded: LoadedObject, map_setup: MapSetup) -> None:
    obj = loaded.obj
    for map_name, entries in map_setup.items():
        defn, kmap = obj.map(map_name), loaded.map(map_name)
        for key, value in entries.items():
            if isinstance(value, bytes):
                kmap.update(key, value)
            elif defn.map_type in _MAP_IN_MAP:
                set_map_slot(kmap, key, loaded.map(value))
            elif defn.map_type == "prog_array":
                set_prog_slot(kmap, key, loaded.load(value, log_level=0, stats=False))
            else:
                raise KernelArgumentError("map_setup", f"map {map_name!r} ({defn.map_type}) takes bytes, "
                                          f"not the name {value!r}")


def _test_run(obj: "BpfObject", program_name: str, packet: bytes, map_setup: MapSetup,
              ctx: bytes | None) -> KernelObjectRun:
    with load_object_in_kernel(obj, program_name, log_level=0, stats=False) as loaded:
        _apply_setup(loaded, map_setup)
        prog = loaded.programs[obj.program(program_name).name]
        result = prog.test_run(packet, ctx_in=ctx)
        return KernelObjectRun(result.retval, result.data_out, result.ctx_out, loaded.dump_maps())


def test_run_in_kernel(obj: "BpfObject", program_name: str, packet: bytes = b"", *,
                       map_setup: MapSetup | None = None, ctx: bytes | None = None,
                       isolated: bool = True, timeout: float = 30.0) -> KernelObjectRun:
    """Load ``obj`` (maps, ``program_name`` and the programs its prog_arrays
    name), write ``map_setup``, run the program once on ``packet`` with
    BPF_PROG_TEST_RUN and return what came out.  In a forked child unless
    ``isolated=False``; kernel errors are raised here either way."""
    args = (obj, program_name, bytes(packet), dict(map_setup or {}), ctx)
    if not isolated:
        return _test_run(*args)
    return run_in_child(_test_run, *args, timeout=timeout)


test_run_in_kernel.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name
