"""``ebpfvm verify``: run the verifier over raw bytecode, asm text, .data files
or every program of ELF objects and print one verdict per program.

Exit 0 when every program is accepted, 1 when any is rejected; bad input
raises ``UserInputError`` (the CLI prints one line and exits 2).
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from .errors import InputFileError, UserInputError

EXIT_OK, EXIT_REJECT = 0, 1
_MAP_KEYS = ("fd", "type", "key", "value", "max_entries", "flags", "name")


def add_verify_parser(sub) -> None:
    p = sub.add_parser("verify", help="verify programs as the kernel's verifier would (accept/reject)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="ELF objects, raw bytecode, assembler source or .data files")
    p.add_argument("--section", help="objects: only the programs of this section")
    p.add_argument("--program", help="objects: only the program with this symbol name")
    p.add_argument("--prog-type", help="program type (libbpf names: socket_filter, kprobe, xdp, sched_cls, ...); "
                                       "objects default to the section's, bytecode to socket_filter")
    p.add_argument("--log-level", type=int, choices=(0, 1, 2), default=0)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--attach-type", help="expected attach type (e.g. cgroup_inet_ingress)")
    p.add_argument("--prog-flag", action="append", default=[], metavar="NAME",
                   help="load flag, e.g. BPF_F_STRICT_ALIGNMENT or any_alignment (repeatable)")
    p.add_argument("--map", action="append", default=[], metavar="SPEC",
                   help="bytecode/asm: declare map fd N: fd=N,type=hash,key=4,value=8,max_entries=16 (repeatable)")
    p.set_defaults(handler=verify_command)


def _prog_type_name(text: str) -> str:
    from .kernel.constants import PROG_TYPE_NAMES

    name = text.strip().lower().removeprefix("bpf_prog_type_")
    if name in PROG_TYPE_NAMES and name != "unspec":
        return name
    try:
        from .progtypes import get_prog_type
        return get_prog_type(name).name
    except Exception:
        raise UserInputError(f"unknown --prog-type {text!r}") from None


def _attach_type(text: str | None) -> str | None:
    if text is None:
        return None
    from .kernel.constants import ATTACH_TYPE_NAMES

    name = text.strip().lower().removeprefix("bpf_")
    if name not in ATTACH_TYPE_NAMES:
        raise UserInputError(f"unknown --attach-type {text!r}")
    return name


def _prog_flags(names: list[str]) -> int:
    from .kernel.constants import PROG_FLAG_NAMES

    flags = 0
    for text in names:
        name = text.strip().lower().removeprefix("bpf_f_")
        if name not in PROG_FLAG_NAMES:
            known = ", ".join(sorted(PROG_FLAG_NAMES))
            raise UserInputError(f"unknown --prog-flag {text!r} (known: {known})")
        flags |= PROG_FLAG_NAMES[name]
    return flags


def _int(spec: str, key: str, value: str) -> int:
    try:
        number = int(value, 0)
    except ValueError:
        raise UserInputError(f"--map {spec!r}: {key} is not an integer: {value!r}") from None
    if number < 0:
        raise UserInputError(f"--map {spec!r}: {key} must not be negative")
    return number


def parse_map_specs(specs: list[str]) -> tuple:
    """``fd=N,type=T,key=K,value=V,max_entries=M`` options -> the Program's
    ``maps`` tuple, indexed by fd.  Every fd from 0 to the largest must be declared."""
    from .kernel.constants import MAP_TYPE_NAMES
    from .maps.definition import MapDefinition

    by_fd: dict[int, MapDefinition] = {}
    for spec in specs:
        fields: dict[str, str] = {}
        for part in spec.split(","):
            key, eq, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or not key:
                raise UserInputError(f"--map {spec!r}: expected key=value pairs, got {part!r}")
            if key not in _MAP_KEYS:
                raise UserInputError(f"--map {spec!r}: unknown key {key!r} (known: {', '.join(_MAP_KEYS)})")
            fields[key] = value.strip()
        missing = [k for k in ("fd", "type", "key", "value", "max_entries") if k not in fields]
        if missing:
            raise UserInputError(f"--map {spec!r}: missing {', '.join(missing)}")
        fd = _int(spec, "fd", fields["fd"])
        map_type = fields["type"].lower().removeprefix("bpf_map_type_")
        if map_type not in MAP_TYPE_NAMES or map_type == "unspec":
            raise UserInputError(f"--map {spec!r}: unknown map type {fields['type']!r}")
        if fd in by_fd:
            raise UserInputError(f"--map {spec!r}: fd {fd} declared twice")
        max_entries = _int(spec, "max_entries", fields["max_entries"])
        if max_entries == 0:
            raise UserInputError(f"--map {spec!r}: max_entries must be positive")
        by_fd[fd] = MapDefinition(name=fields.get("name", f"map{fd}"), map_type=map_type,
                                  key_size=_int(spec, "key", fields["key"]),
                                  value_size=_int(spec, "value", fields["value"]), max_entries=max_entries,
                                  flags=_int(spec, "flags", fields.get("flags", "0")))
    if not by_fd:
        return ()
    gaps = [fd for fd in range(max(by_fd) + 1) if fd not in by_fd]
    if gaps:
        raise UserInputError(f"--map: maps must be declared for every fd from 0 to {max(by_fd)}; "
                             f"missing fd {', '.join(map(str, gaps))}")
    return tuple(by_fd[fd] for fd in range(len(by_fd)))


def _targets(args: argparse.Namespace, maps: tuple):
    """(file, section, name, program, prog_type, attach) for every program to verify."""
    from .loader import is_elf_file, load_program_file
    from .program import Program

    prog_type = _prog_type_name(args.prog_type) if args.prog_type else None
    attach = _attach_type(args.attach_type)
    out = []
    for path in args.files:
        if is_elf_file(path):
            if args.map:
                raise InputFileError(path, "--map is for bytecode and asm; objects declare their own maps")
            from .elf import load_object

            programs = load_object(path).programs
            if args.section is not None:
                programs = tuple(p for p in programs if p.section == args.section)
                if not programs:
                    raise InputFileError(path, f"no program in section {args.section!r}")
            if args.program is not None:
                programs = tuple(p for p in programs if p.name == args.program)
                if not programs:
                    raise InputFileError(path, f"no program named {args.program!r}")
            for p in programs:
                ptype = prog_type or getattr(p, "prog_type", None)
                if ptype is None:
                    raise InputFileError(path, f"program {p.name!r} (section {p.section!r}): unknown program "
                                               "type; give --prog-type")
                out.append((path, p.section or "", p.name or "", p, ptype,
                            attach or getattr(p, "expected_attach_type", None)))
        else:
            if args.section is not None or args.program is not None:
                raise InputFileError(path, "--section/--program are for ELF objects")
            program = load_program_file(path).program
            for pc, insn in enumerate(program.instructions):
                if insn.opcode == 0x18 and insn.src in (1, 2) and not 0 <= insn.imm < len(maps):
                    raise InputFileError(path, f"insn {pc} references map fd {insn.imm}: declare it with "
                                               f"--map fd={insn.imm},type=...,key=...,value=...,max_entries=...")
            if maps:
                program = Program(program.instructions, labels=program.labels, source=program.source,
                                  prog_type=prog_type, maps=maps)
            out.append((path, "", "", program, prog_type or "socket_filter", attach))
    return out


def verify_command(args: argparse.Namespace, out: TextIO) -> int:
    from .verifier import verify

    maps = parse_map_specs(args.map)
    flags = _prog_flags(args.prog_flag)
    targets = _targets(args, maps)
    records = []
    any_reject = False
    for path, section, name, program, ptype, attach in targets:
        result = verify(program, prog_type=ptype, log_level=args.log_level, prog_flags=flags,
                        expected_attach_type=attach)
        any_reject |= not result.accepted
        records.append((path, section, name, program, ptype, result))
    if args.format == "json":
        doc = []
        for path, section, name, _program, ptype, result in records:
            error = None if result.error is None else {"insn": result.error.insn, "message": result.error.message}
            stats = {k: result.stats.get(k, 0) for k in
                     ("processed_insns", "total_states", "peak_states", "max_states_per_insn", "time_us")}
            doc.append({"file": path, "section": section or None, "program": name or None, "prog_type": ptype,
                        "verdict": result.verdict, "error": error, "stats": stats})
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        for path, section, name, program, ptype, result in records:
            label = path + (f" {section}/{name}" if section or name else "")
            s = result.stats
            out.write(f"{label}: {result.verdict}, {s.get('processed_insns', 0)} insns processed, "
                      f"{s.get('total_states', 0)} states, {s.get('time_us', 0)} us\n")
            if result.error is not None:
                out.write("  " + _error_line(program, result.error) + "\n")
            if args.log_level >= 1 and result.log:
                for line in result.log.rstrip("\n").splitlines():
                    out.write("  | " + line + "\n")
    return EXIT_REJECT if any_reject else EXIT_OK


def _error_line(program, error) -> str:
    message = error.message or error.errno
    insn = error.insn
    if insn is None or not 0 <= insn < len(program.instructions):
        return f"error: {message} ({error.errno})"
    try:
        from .asm import format_instruction_kernel_log_line
        where = format_instruction_kernel_log_line(program, insn)
        where = where.split(": ", 1)[1] if ": " in where else where
    except Exception:
        where = f"({program.instructions[insn].opcode:02x})"
    return f"insn {insn}: {where}: {message}"
