"""A minimal BTF and func_info for raw bytecode with subprograms.

The kernel refuses callbacks (``bpf_loop``, ``bpf_for_each_map_elem``) in a
program loaded without func_info ("missing btf func_info").  An ELF object
carries it in .BTF.ext; hand-written bytecode does not, so this module makes
the least BTF that satisfies the kernel: one ``int``, one ``int f(void)``
prototype and a static FUNC per subprogram, and the func_info records
(instruction index, FUNC type id) naming each subprogram's first instruction.
Static functions are not checked against their prototype, so the verifier
treats them exactly as without BTF.
"""

from __future__ import annotations

import struct

_BTF_MAGIC = 0xEB9F
_KIND_INT, _KIND_FUNC, _KIND_FUNC_PROTO = 1, 12, 13
_LINKAGE_STATIC = 0


def subprogram_starts(insns: bytes) -> list[int]:
    """Index 0 and every in-range target of a bpf-to-bpf call (``call`` with
    src 1) or of a function address (``lddw`` with src 4), sorted."""
    count = len(insns) // 8
    starts = {0}
    pc = 0
    while pc < count:
        opcode, regs, _off, imm = struct.unpack_from("<BBhi", insns, pc * 8)
        src = regs >> 4
        target = pc + 1 + imm
        if ((opcode == 0x85 and src == 1) or (opcode == 0x18 and src == 4)) and 0 <= target < count:
            starts.add(target)
        pc += 2 if opcode == 0x18 else 1
    return sorted(starts)


def _type(name_off: int, kind: int, vlen: int, size_or_type: int) -> bytes:
    return struct.pack("<III", name_off, kind << 24 | vlen, size_or_type)


def minimal_btf(functions: int) -> bytes:
    """A .BTF blob: [1] int, [2] int (void), [3..] FUNC f0, f1, ... (static)."""
    names = b"\0int\0" + b"".join(f"f{i}\0".encode() for i in range(functions))
    types = _type(1, _KIND_INT, 0, 4) + struct.pack("<I", 1 << 24 | 32)  # signed, 32 bits
    types += _type(0, _KIND_FUNC_PROTO, 0, 1)
    off = len(b"\0int\0")
    for i in range(functions):
        types += _type(off, _KIND_FUNC, _LINKAGE_STATIC, 2)
        off += len(f"f{i}\0")
    header = struct.pack("<HBBIIIII", _BTF_MAGIC, 1, 0, 24, 0, len(types), len(types), len(names))
    return header + types + names


def func_info_for(insns: bytes) -> tuple[bytes, bytes]:
    """(BTF blob, func_info records) describing every subprogram of ``insns``."""
    starts = subprogram_starts(insns)
    records = b"".join(struct.pack("<II", start, 3 + i) for i, start in enumerate(starts))
    return minimal_btf(len(starts)), records


def needs_func_info(insns: bytes) -> bool:
    """Whether ``insns`` takes a function's address (a callback): without
    func_info the kernel refuses it."""
    count = len(insns) // 8
    pc = 0
    while pc < count:
        opcode, regs = insns[pc * 8], insns[pc * 8 + 1]
        if opcode == 0x18 and regs >> 4 == 4:
            return True
        pc += 2 if opcode == 0x18 else 1
    return False
