"""The assembler and disassemblers.

``assemble`` reads the bpf_conformance ``.data`` dialect; ``disassemble`` and
``format_instruction`` print that dialect back (``style="asm"``) or the
kernel verifier log's wording (``style="kernel"``).

The dialect, one instruction per line, ``#`` starting a comment::

    name:                              a label (may share a line with an instruction)
    add %r1, 2 / add %r1, %r2          ALU64; add32 ... for ALU; sdiv/smod; neg, neg32
    movsx864 %r1, %r2                  sign-extending mov (also 1664, 3264, 832, 1632)
    le16 %r1 / be32 %r1 / bswap64 %r1  byte swaps (swap16/32/64 are aliases of bswap)
    ldxw %r0, [%r1+4] / ldxsb ...      loads; stw [%r10-8], 5 / stxdw [%r10-8], %r0
    lock add [%r1], %r2                atomics: add or and xor, fetch add..., xchg,
    lock fetch add32 [%r1], %r2          cmpxchg; the 32 suffix on the operation
    lddw %r0, 0x1122334455667788       64-bit immediate (two slots)
    lddw %r1, map_fd 3                 pseudo sources: map_fd, map_value N, OFF, btf_id,
                                         func LABEL, map_idx, map_idx_value N, OFF
    ldabsw 12 / ldindb %r3, 4          legacy packet loads
    ja label / ja +3 / ja32 label      jumps take a label or a signed slot offset
    jeq %r1, 5, label / jne32 ...      conditional jumps, imm or register operand
    call 5 / call bpf_ktime_get_ns     helper call by id or name
    call local label / call kfunc 7    bpf-to-bpf call / kernel function by BTF id
    call %r2                           callx
    exit

Decimal immediates are signed 32-bit; hex ones may also spell the 32-bit
pattern (``0xffffffff`` is -1). ``exit`` used as a jump target means the
first exit instruction unless a label of that name exists.
"""

from .assembler import assemble
from .disassembler import STYLES, disassemble, format_instruction, format_instruction_kernel_log_line

__all__ = ["STYLES", "assemble", "disassemble", "format_instruction", "format_instruction_kernel_log_line"]
