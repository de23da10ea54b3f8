"""The ``ebpfvm`` command line.

Every failure a user can cause ends here as one line on stderr: input errors
(``UserInputError``) exit 2, faults of the program being run
(``ProgramFault``) exit 1. Nothing else is allowed to escape as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Sequence, TextIO

from .errors import EbpfvmError, InputFileError, ProgramFault, UserInputError

EXIT_OK = 0
EXIT_FAULT = 1
EXIT_USAGE = 2


def _parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _positive_int(text: str) -> int:
    value = _parse_int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex bytes: {text!r}") from None


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default prints usage too, which is fine,
    but never a traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="ebpfvm", description="eBPF virtual machine, verifier and JIT in Python.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    p = sub.add_parser("asm", help="assemble a program to raw bytecode")
    p.add_argument("file", help="assembler source (or a .data conformance file)")
    p.add_argument("-o", "--output", help="write raw bytecode here (default: hex words on stdout)")
    p.set_defaults(handler=cmd_asm)

    p = sub.add_parser("disasm", help="disassemble a program")
    p.add_argument("file", help="an ELF object, raw bytecode, assembler source or a .data file")
    p.add_argument("--program", help="objects: only the program with this symbol name")
    p.add_argument("--style", choices=("asm", "kernel"), default="asm",
                   help="asm: the assembler's dialect (round-trips); kernel: the verifier log's style")
    p.set_defaults(handler=cmd_disasm)

    p = sub.add_parser("run", help="run a program in the interpreter")
    p.add_argument("file", help="an ELF object (clang -target bpf), raw bytecode, assembler source or a .data file")
    inputs = p.add_mutually_exclusive_group()
    inputs.add_argument("--mem", type=_parse_hex, help="input memory as hex bytes (given in r1, length in r2)")
    inputs.add_argument("--mem-file", help="input memory from a file")
    inputs.add_argument("--packet", metavar="FILE", help="objects: the packet given to an xdp/tc/socket program")
    inputs.add_argument("--ctx", metavar="FILE", help="objects: the context bytes (e.g. pt_regs for a kprobe)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--section", help="objects: run the program of this section")
    which.add_argument("--program", help="objects: run the program with this symbol name")
    p.add_argument("--map", action="append", default=[], metavar="NAME=FILE",
                   help="objects: fill map NAME from FILE before the run (repeatable)")
    p.add_argument("--budget", type=_positive_int, default=1_000_000, help="instruction budget (default 1000000)")
    p.add_argument("--trace", action="store_true", help="print every executed instruction with registers")
    p.add_argument("--stats", action="store_true", help="print executed instructions and wall time")
    p.add_argument("--engine", choices=("interp", "jit"), default="interp",
                   help="bytecode/asm/.data files: run in the interpreter (default) or the JIT (checked mode)")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("jit", help="show the LLVM IR or native assembly the JIT makes of a program")
    p.add_argument("file", help="raw bytecode, assembler source or a .data file")
    p.add_argument("--emit", choices=("llvm", "llvm-opt", "asm"), default="llvm",
                   help="llvm: IR as lowered; llvm-opt: after the pass pipeline; asm: native assembly")
    p.add_argument("--mode", choices=("checked", "trusted"), default="checked")
    p.add_argument("-O", "--opt-level", type=int, choices=(0, 1, 2, 3), default=2)
    p.set_defaults(handler=cmd_jit)

    p = sub.add_parser("inspect", help="list an ELF object's programs, maps, sections, relocations and BTF")
    p.add_argument("file", help="an ELF object built with clang -target bpf")
    p.set_defaults(handler=cmd_inspect)

    p = sub.add_parser("conformance", help="run .data conformance cases; `conformance record|check [PATH...]` "
                                          "records or checks kernel verdicts of .case files")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help=".data files or directories, or `record`/`check` followed by .case files or directories")
    p.add_argument("--engine", default="interp", help="interp, kernel, jit or all (default interp)")
    p.set_defaults(handler=cmd_conformance)

    from .verify_cli import add_verify_parser

    add_verify_parser(sub)

    p = sub.add_parser("fuzz-verifier", help="compare our verifier's verdicts with the live kernel's on "
                                             "generated programs")
    p.add_argument("--count", type=_positive_int, default=200, help="programs to generate (default 200)")
    p.add_argument("--seed", type=_parse_int, default=0, help="generation seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="write each disagreement here as a .case file")
    p.add_argument("--prog-type", action="append", choices=("socket_filter", "sched_cls", "xdp"),
                   help="only this program type (repeatable; default all three)")
    p.add_argument("--bias-subprog-stack", action="store_true",
                   help="every program calls a subprogram that adds a scalar to its frame pointer")
    p.set_defaults(handler=cmd_fuzz_verifier)
    return parser


def cmd_asm(args: argparse.Namespace, out: TextIO) -> int:
    from .loader import load_program_file

    loaded = load_program_file(args.file)
    data = loaded.program.to_bytes()
    if args.output is None:
        for i in range(0, len(data), 8):
            out.write(data[i:i + 8].hex(" ") + "\n")
        return EXIT_OK
    if os.path.exists(args.output) and os.path.samefile(args.output, args.file):
        raise InputFileError(args.output, "refusing to overwrite the input file")
    try:
        with open(args.output, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise InputFileError(args.output, exc.strerror or str(exc)) from None
    return EXIT_OK


def cmd_disasm(args: argparse.Namespace, out: TextIO) -> int:
    from .asm import disassemble
    from .loader import is_elf_file, load_program_file

    if not is_elf_file(args.file):
        out.write(disassemble(load_program_file(args.file).program, style=args.style))
        return EXIT_OK
    from .elf import load_object

    programs = load_object(args.file).programs
    if args.program is not None:
        programs = tuple(p for p in programs if p.name == args.program)
        if not programs:
            raise InputFileError(args.file, f"no program named {args.program!r}")
    for index, program in enumerate(programs):
        out.write(("\n" if index else "") + f"; {program.name} (section {program.section})\n")
        out.write(disassemble(program, style=args.style))
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    from .elf import load_object
    from .elf.inspect import describe

    out.write(describe(load_object(args.file)))
    return EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from .interp import TraceEntry, format_entry, run
    from .loader import is_elf_file, load_program_file, read_file_bytes

    object_only = [flag for flag, value in (("--packet", args.packet), ("--ctx", args.ctx),
                                            ("--section", args.section), ("--program", args.program),
                                            ("--map", args.map)) if value]
    if is_elf_file(args.file):
        if args.mem is not None or args.mem_file is not None:
            raise InputFileError(args.file, "--mem/--mem-file are for bytecode; give an object --packet or --ctx")
        if args.engine == "jit" and args.trace:
            raise InputFileError(args.file, "--trace needs --engine interp (native code is not traced)")
        from .runtime.cli_run import run_object_command

        return run_object_command(args.file, section=args.section, program=args.program, packet=args.packet,
                                  ctx=args.ctx, maps=args.map, budget=args.budget, trace=args.trace, out=out,
                                  engine=args.engine)
    if object_only:
        raise InputFileError(args.file, f"{', '.join(object_only)}: only for ELF objects")
    if args.engine == "jit" and args.trace:
        raise InputFileError(args.file, "--trace needs --engine interp (native code is not traced)")
    loaded = load_program_file(args.file)
    mem = loaded.mem or b""
    if args.mem is not None:
        mem = args.mem
    elif args.mem_file is not None:
        mem = read_file_bytes(args.mem_file)
    previous: list[tuple[int, ...] | None] = [None]

    def print_step(entry: TraceEntry) -> None:
        # Streamed, so a program that faults still shows the steps before the fault.
        out.write(format_entry(entry, loaded.program, previous[0]) + "\n")
        previous[0] = entry.regs

    if args.engine == "jit":
        from .jit.cli import jit_run

        result, elapsed = jit_run(loaded.program, mem, args.budget)
    else:
        started = time.perf_counter()
        result = run(loaded.program, mem=mem, budget=args.budget, trace=print_step if args.trace else None)
        elapsed = time.perf_counter() - started
    r0 = result.r0
    signed = r0 - (1 << 64) if r0 >> 63 else r0
    out.write(f"r0 = {r0:#x} ({signed})\n")
    if args.stats:
        rate = result.executed / elapsed if elapsed > 0 else 0.0
        out.write(f"executed {result.executed} instructions in {elapsed * 1e3:.3f} ms ({rate:,.0f} insn/s)\n")
    return EXIT_OK


def cmd_jit(args: argparse.Namespace, out: TextIO) -> int:
    from .jit.cli import emit
    from .loader import load_program_file

    out.write(emit(load_program_file(args.file).program, args.emit, mode=args.mode, opt_level=args.opt_level))
    return EXIT_OK


def cmd_conformance(args: argparse.Namespace, out: TextIO) -> int:
    action, rest = args.paths[0], args.paths[1:]
    if action in ("record", "check"):
        # Verifier verdict cases (.case): record the live kernel's verdicts into
        # them, or check that they still hold. No paths means the whole corpus.
        from .conformance.verdicts import check_command, record_command

        return (record_command if action == "record" else check_command)(rest, out)
    from .conformance import conformance_command

    return conformance_command(args.paths, args.engine, out)


def cmd_fuzz_verifier(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from .conformance.verifier_fuzz import fuzz_verifier_command
    except ImportError as exc:  # hypothesis is in the fuzz (and test) extra
        raise UserInputError(f"fuzz-verifier needs {exc.name or 'hypothesis'}: pip install 'ebpfvm[fuzz]'") from None
    return fuzz_verifier_command(args.count, args.seed, args.out, tuple(args.prog_type or ()) or None,
                                 args.bias_subprog_stack, out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    try:
        return handler(args, out)
    except UserInputError as exc:
        err.write(f"ebpfvm {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except ProgramFault as exc:
        err.write(f"ebpfvm {args.command}: fault: {exc}\n")
        return EXIT_FAULT
    except EbpfvmError as exc:
        err.write(f"ebpfvm {args.command}: error: {exc}\n")
        return EXIT_FAULT
    except KeyboardInterrupt:
        err.write("ebpfvm: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
