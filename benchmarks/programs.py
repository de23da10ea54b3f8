"""Benchmark programs, built as instructions with symbolic jump labels.

Each ``Workload`` carries its program, input memory and the r0 it must
return, so a benchmark run also checks that the interpreter computed the
right thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, Instruction, JmpOp, Size
from ebpfvm.program import Program

ADD, SUB, MUL, DIV, MOD, XOR, LSH, RSH, ARSH, MOV, AND = (
    AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV, AluOp.MOD, AluOp.XOR, AluOp.LSH, AluOp.RSH, AluOp.ARSH,
    AluOp.MOV, AluOp.AND)
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Jump:
    """A jump to a label, resolved by ``link``."""

    op: JmpOp
    dst: int
    operand: int  # immediate, or register when ``reg``
    label: str
    reg: bool = False


Item = Instruction | tuple | str | Jump


def link(items: list[Item]) -> Program:
    """Lay out ``items`` (instructions, lddw pairs, label strings, ``Jump``s)."""
    labels: dict[str, int] = {}
    pc = 0
    for item in items:
        if isinstance(item, str):
            labels[item] = pc
        else:
            pc += len(item) if isinstance(item, tuple) else 1
    out: list[Instruction] = []
    for item in items:
        if isinstance(item, str):
            continue
        if isinstance(item, Jump):
            off = labels[item.label] - (len(out) + 1)
            if item.op == JmpOp.JA:
                out.append(b.ja(off))
            elif item.reg:
                out.append(b.jmp_reg(item.op, item.dst, item.operand, off))
            else:
                out.append(b.jmp_imm(item.op, item.dst, item.operand, off))
        elif isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return Program(out, labels={pc: name for name, pc in labels.items()}).check()


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    program: Program
    mem: bytes
    expected_r0: int
    native: str = ""  # C version: file name under benchmarks/native/ (comparison suite)


def sieve_stack(limit: int = 400, repeats: int = 200) -> Workload:
    """Sieve of Eratosthenes over bytes on the stack, ``repeats`` times."""
    items: list[Item] = [
        b.mov64_imm(9, repeats),
        "outer",
        b.mov64_imm(1, 0),
        "clear",
        b.mov64_reg(2, 10), b.alu64_imm(SUB, 2, limit), b.alu64_reg(ADD, 2, 1),
        b.st(Size.B, 2, 0, 0),
        b.alu64_imm(ADD, 1, 1),
        Jump(JmpOp.JLT, 1, limit, "clear"),
        b.mov64_imm(0, 0), b.mov64_imm(1, 2),
        "next",
        b.mov64_reg(2, 10), b.alu64_imm(SUB, 2, limit), b.alu64_reg(ADD, 2, 1),
        b.ldx(Size.B, 3, 2, 0),
        Jump(JmpOp.JNE, 3, 0, "skip"),
        b.alu64_imm(ADD, 0, 1),
        b.mov64_reg(4, 1), b.alu64_reg(MUL, 4, 1),
        "mark",
        Jump(JmpOp.JGE, 4, limit, "skip"),
        b.mov64_reg(2, 10), b.alu64_imm(SUB, 2, limit), b.alu64_reg(ADD, 2, 4),
        b.st(Size.B, 2, 0, 1),
        b.alu64_reg(ADD, 4, 1),
        Jump(JmpOp.JA, 0, 0, "mark"),
        "skip",
        b.alu64_imm(ADD, 1, 1),
        Jump(JmpOp.JLT, 1, limit, "next"),
        b.alu64_imm(SUB, 9, 1),
        Jump(JmpOp.JNE, 9, 0, "outer"),
        b.exit_insn(),
    ]
    return Workload("sieve-stack", f"primes below {limit} on the stack, {repeats} times",
                    link(items), b"", _count_primes(limit))


def sieve_mem(limit: int = 100_000) -> Workload:
    """Sieve of Eratosthenes over the input memory (r1 = base, r2 = length)."""
    items: list[Item] = [
        b.mov64_reg(6, 1), b.mov64_reg(7, 2),
        b.mov64_imm(0, 0), b.mov64_imm(1, 2),
        "next",
        b.mov64_reg(2, 6), b.alu64_reg(ADD, 2, 1),
        b.ldx(Size.B, 3, 2, 0),
        Jump(JmpOp.JNE, 3, 0, "skip"),
        b.alu64_imm(ADD, 0, 1),
        b.mov64_reg(4, 1), b.alu64_reg(MUL, 4, 1),
        "mark",
        Jump(JmpOp.JGE, 4, 7, "skip", reg=True),
        b.mov64_reg(2, 6), b.alu64_reg(ADD, 2, 4),
        b.st(Size.B, 2, 0, 1),
        b.alu64_reg(ADD, 4, 1),
        Jump(JmpOp.JA, 0, 0, "mark"),
        "skip",
        b.alu64_imm(ADD, 1, 1),
        Jump(JmpOp.JLT, 1, 7, "next", reg=True),
        b.exit_insn(),
    ]
    return Workload("sieve-mem", f"primes below {limit} in a {limit}-byte input memory",
                    link(items), bytes(limit), _count_primes(limit))


def alu_mix(iterations: int = 40_000) -> Workload:
    """xorshift64 state mixed into an accumulator with mul, div, mod, 32-bit ops."""
    items: list[Item] = [
        b.mov64_imm(0, 0),
        b.lddw(6, 0x9E37_79B9_7F4A_7C15),
        b.mov64_imm(7, 1),
        b.mov64_imm(8, iterations),
        "loop",
        b.mov64_reg(1, 7), b.alu64_imm(LSH, 1, 13), b.alu64_reg(XOR, 7, 1),
        b.mov64_reg(1, 7), b.alu64_imm(RSH, 1, 7), b.alu64_reg(XOR, 7, 1),
        b.mov64_reg(1, 7), b.alu64_imm(LSH, 1, 17), b.alu64_reg(XOR, 7, 1),
        b.mov64_reg(2, 7), b.alu64_reg(MUL, 2, 6), b.alu64_reg(ADD, 0, 2),
        b.alu32_reg(MOV, 3, 7), b.alu32_imm(ADD, 3, 12345), b.alu32_imm(MOD, 3, 1000),
        b.mov64_reg(4, 7), b.alu64_imm(RSH, 4, 40), b.alu64_imm(ADD, 4, 1),
        b.mov64_reg(5, 0), b.alu64_reg(DIV, 5, 4), b.alu64_reg(XOR, 0, 5),
        b.alu64_reg(ADD, 0, 3), b.alu64_imm(ARSH, 0, 1),
        b.alu64_imm(SUB, 8, 1),
        Jump(JmpOp.JNE, 8, 0, "loop"),
        b.exit_insn(),
    ]
    return Workload("alu-mix", f"{iterations} rounds of xorshift64 + mul/div/mod mixing",
                    link(items), b"", _alu_mix_reference(iterations))


def _count_primes(limit: int) -> int:
    return sum(1 for n in range(2, limit) if all(n % d for d in range(2, int(n ** 0.5) + 1)))


def _alu_mix_reference(iterations: int) -> int:
    """The same computation in plain Python, to check the interpreter's result."""
    acc, x, golden = 0, 1, 0x9E37_79B9_7F4A_7C15
    for _ in range(iterations):
        x ^= (x << 13) & MASK64
        x ^= x >> 7
        x ^= (x << 17) & MASK64
        acc = (acc + x * golden) & MASK64
        w = ((x & 0xFFFF_FFFF) + 12345) & 0xFFFF_FFFF
        w %= 1000
        acc ^= acc // ((x >> 40) + 1)
        acc = (acc + w) & MASK64
        signed = acc - (1 << 64) if acc >> 63 else acc
        acc = (signed >> 1) & MASK64
    return acc


WORKLOADS = {"sieve-stack": sieve_stack, "sieve-mem": sieve_mem, "alu-mix": alu_mix}


# -- the comparison suite (python -m benchmarks): BPF asm + C in native/ --------------
#
# Each program follows the interpreter's convention (r1 = input memory, r2 =
# its length, r0 = result) and is written so that the kernel verifier accepts
# it once wrapped by ``ebpfvm.kernel.execute.wrap_for_kernel``: loop counters
# are compared with the (constant) length, offsets are bounded, and every run
# leaves the memory so that the next run computes the same r0 (repeat runs).

def _asm(text: str, name: str):
    from ebpfvm.asm import assemble
    return assemble(text, source=name)


SIEVE_ASM = """
    mov %r6, %r1
    mov %r7, %r2
    mov %r1, 0
clear:                          # the memory is the sieve: clear it first
    mov %r3, %r6
    add %r3, %r1
    stb [%r3+0], 0
    add %r1, 1
    jlt %r1, %r7, clear
    mov %r0, 0
    mov %r1, 2
next:
    jge %r1, %r7, done
    mov %r3, %r6
    add %r3, %r1
    ldxb %r3, [%r3+0]
    jne %r3, 0, skip
    add %r0, 1
    mov %r4, %r1
    mul %r4, %r1
mark:
    jge %r4, %r7, skip
    mov %r3, %r6
    add %r3, %r4
    stb [%r3+0], 1
    add %r4, %r1
    ja mark
skip:
    add %r1, 1
    ja next
done:
    exit
"""

MEMCPY_ASM = """
    mov %r6, %r1                # src = mem[0, n)
    mov %r8, %r2
    rsh %r8, 2
    and %r8, -8                 # n = len / 4 rounded down to 8 (no div: the
                                # kernel verifier does not track division)
    mov %r9, %r6
    add %r9, %r8                # dst = mem[n, 2n)
    mov %r7, %r9
    add %r7, %r8                # set = mem[2n, 3n)
    lddw %r5, 0x5a5a5a5a5a5a5a5a
    mov %r0, 0
    mov %r1, 0
memset:
    mov %r3, %r7
    add %r3, %r1
    stxdw [%r3+0], %r5
    add %r1, 8
    jlt %r1, %r8, memset
    mov %r1, 0
memcpy:
    mov %r3, %r6
    add %r3, %r1
    ldxdw %r4, [%r3+0]
    add %r0, %r4
    mov %r3, %r9
    add %r3, %r1
    stxdw [%r3+0], %r4
    add %r1, 8
    jlt %r1, %r8, memcpy
    exit
"""

CHECKSUM_ASM = """
    mov %r6, %r1
    mov %r7, %r2
    and %r7, -2
    mov %r0, 0
    mov %r1, 0
loop:
    jge %r1, %r7, fold
    mov %r3, %r6
    add %r3, %r1
    ldxh %r4, [%r3+0]
    be16 %r4
    add %r0, %r4
    add %r1, 2
    ja loop
fold:
    mov %r3, %r0
    rsh %r3, 16
    and %r0, 0xffff
    add %r0, %r3
    mov %r3, %r0
    rsh %r3, 16
    and %r0, 0xffff
    add %r0, %r3
    xor %r0, 0xffff
    exit
"""

XDP_PARSE_ASM = """
    mov %r6, %r1
    mov %r7, %r2
    mov %r0, 0
    mov %r8, 0                  # slot offset: one packet per 128 bytes
pkt:
    jge %r8, %r7, done
    mov %r9, %r6
    add %r9, %r8
    mov %r2, 1
    ldxh %r3, [%r9+12]          # Ethernet type
    be16 %r3
    jne %r3, 0x0800, next
    mov %r2, 2
    ldxb %r3, [%r9+14]          # IPv4 version / IHL
    mov %r4, %r3
    rsh %r4, 4
    jne %r4, 4, next
    mov %r2, 3
    and %r3, 0xf
    jlt %r3, 5, next
    mov %r2, 4
    ldxb %r4, [%r9+23]          # protocol
    jne %r4, 6, next
    lsh %r3, 2                  # IPv4 header length
    ldxw %r2, [%r9+26]          # saddr
    ldxw %r4, [%r9+30]          # daddr
    xor %r2, %r4
    add %r9, %r3                # TCP header at r9 + 14
    ldxw %r4, [%r9+14]          # ports
    xor %r2, %r4
    ldxb %r4, [%r9+27]          # TCP flags
    lsh %r4, 32
    xor %r2, %r4
next:
    mul %r0, 31
    add %r0, %r2
    add %r8, 128
    ja pkt
done:
    exit
"""

COUNTER_ASM = """
    mov %r6, %r1
    mov %r7, %r2
    and %r7, -4
    mov %r1, 0
zero:                           # 32 slots of (u32 key, u32 count) at fp-256
    mov %r3, %r10
    add %r3, %r1
    stdw [%r3-256], 0
    add %r1, 8
    jlt %r1, 256, zero
    mov %r8, 0
key:
    jge %r8, %r7, fold
    mov %r3, %r6
    add %r3, %r8
    ldxw %r4, [%r3+0]
    mov32 %r5, %r4
    mul32 %r5, 0x9e3779b1
    rsh32 %r5, 27               # slot = hash >> 27
    mov %r9, 0
probe:                          # fall-through = hit, so the kernel verifier's
    jge %r9, 32, nextkey        # pending-branch stack stays short
    mov %r1, %r5
    lsh %r1, 3
    mov %r3, %r10
    add %r3, %r1
    ldxw %r1, [%r3-256]
    jne %r1, %r4, miss
    ldxw %r1, [%r3-252]         # hit: count + 1
    add %r1, 1
    stxw [%r3-252], %r1
nextkey:
    add %r8, 4
    ja key
miss:
    jne %r1, 0, again
    stxw [%r3-256], %r4         # empty slot: insert with count 1
    stw [%r3-252], 1
    ja nextkey
again:
    add %r5, 1
    and %r5, 31
    add %r9, 1
    ja probe
fold:
    mov %r0, 0
    mov %r1, 0
foldloop:
    mov %r3, %r10
    add %r3, %r1
    ldxw %r4, [%r3-256]
    ldxw %r5, [%r3-252]
    mul %r4, %r5
    mul %r0, 31
    add %r0, %r4
    add %r1, 8
    jlt %r1, 256, foldloop
    exit
"""

CALLS_ASM = """
    mov %r6, %r1
    mov %r7, %r2
    mov %r8, 0
    mov %r9, 0
loop:
    jge %r8, %r7, done
    mov %r3, %r6
    add %r3, %r8
    ldxw %r1, [%r3+0]
    call local f1
    add %r9, %r0
    add %r8, 4
    ja loop
done:
    mov %r0, %r9
    exit
f1:                             # f2(x * 3 + 1) ^ x
    stxdw [%r10-8], %r1
    mul %r1, 3
    add %r1, 1
    call local f2
    ldxdw %r1, [%r10-8]
    xor %r0, %r1
    exit
f2:                             # f3(x ^ (x >> 3)) + 7
    mov %r2, %r1
    rsh %r2, 3
    xor %r1, %r2
    call local f3
    add %r0, 7
    exit
f3:                             # f4(x + 0x1234) * 5
    add %r1, 0x1234
    call local f4
    mul %r0, 5
    exit
f4:                             # (x << 7) ^ (x >> 11)
    mov %r0, %r1
    lsh %r0, 7
    rsh %r1, 11
    xor %r0, %r1
    exit
"""


def _rng_bytes(n: int, seed: int) -> bytes:
    import random
    return random.Random(seed).randbytes(n)


def _u32s(mem: bytes) -> list[int]:
    return [int.from_bytes(mem[i:i + 4], "little") for i in range(0, len(mem) - 3, 4)]


def sieve(limit: int = 2000) -> Workload:
    return Workload("sieve", f"clear a {limit}-byte memory, count primes below {limit}",
                    _asm(SIEVE_ASM, "sieve"), bytes(limit), _count_primes(limit), "sieve.c")


def memcpy(size: int = 16384) -> Workload:
    mem = _rng_bytes(size, 2)
    n = (size // 4) & ~7
    expected = sum(int.from_bytes(mem[i:i + 8], "little") for i in range(0, n, 8)) & MASK64
    return Workload("memcpy", f"memset {n} B + memcpy {n} B in 8-byte words",
                    _asm(MEMCPY_ASM, "memcpy"), mem, expected, "memcpy.c")


def internet_checksum(data: bytes) -> int:
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) & ~1, 2))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return total ^ 0xFFFF


def checksum(size: int = 1500) -> Workload:
    mem = _rng_bytes(size, 3)
    return Workload("checksum", f"internet checksum over a {size}-byte packet",
                    _asm(CHECKSUM_ASM, "checksum"), mem, internet_checksum(mem), "checksum.c")


def _packets(count: int, seed: int = 4) -> bytes:
    """``count`` 128-byte slots: mostly IPv4/TCP with 0-3 option words, some
    UDP, IPv6, ARP and a bad IHL, so that every parser exit is taken."""
    import random
    rng = random.Random(seed)
    out = bytearray()
    for k in range(count):
        slot = bytearray(rng.randbytes(128))
        kind = rng.random()
        ethertype = 0x86DD if kind < 0.08 else 0x0806 if kind < 0.12 else 0x0800
        slot[12:14] = ethertype.to_bytes(2, "big")
        ihl = 2 if 0.12 <= kind < 0.15 else rng.randrange(5, 9)
        slot[14] = 0x40 | ihl
        slot[23] = 17 if 0.15 <= kind < 0.3 else 6
        out += slot
    return bytes(out)


def _parse_reference(mem: bytes) -> int:
    h = 0
    for base in range(0, len(mem), 128):
        p = mem[base:base + 128]
        if int.from_bytes(p[12:14], "big") != 0x0800:
            v = 1
        elif p[14] >> 4 != 4:
            v = 2
        elif p[14] & 0xF < 5:
            v = 3
        elif p[23] != 6:
            v = 4
        else:
            t = 14 + (p[14] & 0xF) * 4
            saddr, daddr, ports = (int.from_bytes(p[o:o + 4], "little") for o in (26, 30, t))
            v = (saddr ^ daddr ^ ports) ^ (p[t + 13] << 32)
        h = (h * 31 + v) & MASK64
    return h


def xdp_parse(count: int = 64) -> Workload:
    mem = _packets(count)
    return Workload("xdp-parse", f"Ethernet/IPv4/TCP parse of {count} packets (128-byte slots)",
                    _asm(XDP_PARSE_ASM, "xdp-parse"), mem, _parse_reference(mem), "xdp_parse.c")


def _counter_reference(mem: bytes) -> int:
    table = [[0, 0] for _ in range(32)]
    for key in _u32s(mem):
        h = ((key * 0x9E3779B1) & 0xFFFF_FFFF) >> 27
        for _ in range(32):
            if table[h][0] == key:
                table[h][1] += 1
                break
            if table[h][0] == 0:
                table[h] = [key, 1]
                break
            h = (h + 1) & 31
    r = 0
    for key, count in table:
        r = (r * 31 + key * count) & MASK64
    return r


def counter(keys: int = 512, distinct: int = 20) -> Workload:
    import random
    rng = random.Random(5)
    pool = [rng.randrange(1, 1 << 32) for _ in range(distinct)]
    mem = b"".join(rng.choice(pool).to_bytes(4, "little") for _ in range(keys))
    return Workload("counter", f"{keys} u32 keys ({distinct} distinct) counted in a 32-slot "
                    "open-addressing table on the stack", _asm(COUNTER_ASM, "counter"), mem,
                    _counter_reference(mem), "counter.c")


def _calls_reference(mem: bytes) -> int:
    def f4(x): return ((x << 7) ^ (x >> 11)) & MASK64
    def f3(x): return (f4((x + 0x1234) & MASK64) * 5) & MASK64
    def f2(x): return (f3(x ^ (x >> 3)) + 7) & MASK64
    def f1(x): return f2((x * 3 + 1) & MASK64) ^ x
    return sum(f1(x) for x in _u32s(mem)) & MASK64


def calls(items: int = 512) -> Workload:
    mem = _rng_bytes(items * 4, 6)
    return Workload("calls", f"{items} u32s each through a 4-deep bpf-to-bpf call chain",
                    _asm(CALLS_ASM, "calls"), mem, _calls_reference(mem), "calls.c")


def empty() -> Workload:
    """``mov r0, 0; exit``: what a run costs each engine's harness (call, loop,
    the kernel's test-run overhead); the comparison subtracts it."""
    return Workload("empty", "r0 = 0 (per-run harness cost)", _asm("    mov %r0, 0\n    exit\n", "empty"),
                    bytes(64), 0, "empty.c")


COMPARE_WORKLOADS = {"sieve": sieve, "memcpy": memcpy, "checksum": checksum, "xdp-parse": xdp_parse,
                     "counter": counter, "calls": calls}
