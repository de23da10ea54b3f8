"""The bytes a case loads: its assembled or raw program, map references checked."""

from __future__ import annotations

from .model import Case, CaseBuildError

# --- building the program ------------------------------------------------------

def build_program(case: Case) -> bytes:
    """The instruction bytes of ``case`` as the kernel gets them, except that
    map references carry the map's index (the loader puts in the fd).
    ``CaseBuildError`` (with the file line) if the program cannot be built."""
    if case.raw is not None:
        insns = case.raw
    else:
        from ebpfvm.asm import assemble
        from ebpfvm.errors import AssemblyError

        try:
            program = assemble(case.asm or "", source=case.path)
        except AssemblyError as exc:
            raise CaseBuildError(case.path, exc.message, case.asm_line + exc.line - 1) from None
        insns = program.to_bytes()
        if not insns:
            raise CaseBuildError(case.path, "the program has no instructions", case.asm_line - 1)
    _check_map_indices(insns, case)
    return insns


def _check_map_indices(insns: bytes, case: Case) -> None:
    pc = 0
    while pc < len(insns) // 8:
        opcode, regs = insns[8 * pc], insns[8 * pc + 1]
        if opcode == 0x18:
            if regs >> 4 in (1, 2):
                index = int.from_bytes(insns[8 * pc + 4: 8 * pc + 8], "little", signed=True)
                if not 0 <= index < len(case.maps):
                    raise CaseBuildError(case.path, f"insn {pc}: map index {index} but the case declares "
                                                    f"{len(case.maps)} map(s)", None)
            pc += 2
        else:
            pc += 1
