"""eBPF -> LLVM IR: one LLVM function per subprogram, one small method per operation.

The methods speak llvmlite.ir's ``IRBuilder`` interface. By default
(``builder="text"``) the builder is ``irtext.TextBuilder``, which writes each
instruction's text at once (3x less Python time than llvmlite.ir's object
model at 1,000 instructions); ``builder="llvmlite"`` uses llvmlite.ir itself,
the reference whose printed module the text must equal byte for byte.

Registers r0-r10 (and, checked mode, the instruction budget) are SSA values
built directly, with phis at joins (``FunctionLowering.enter``), never
memory. ``lower_block`` dispatches each instruction on its opcode
(``OPCODE_LOWERING``, the per-``Kind`` table ``KIND_LOWERING`` expanded);
ALU operations are looked up in ``ALU64``/``ALU32`` keyed by
``(AluOp, off)`` like the interpreter's tables, jumps in ``CONDITIONS``.

Function signatures::

    i64 bpf_main(ptr ctx, i64 r1, i64 r2)                   ; depth 0
    internal i64 bpf_sub_<pc>(ptr ctx, i64 depth, i64 r0..r9) ; bpf-to-bpf callee
    i64 bpf_run_many(ptr ctx, ptr rows, i64 n, i64 size, ptr out, i64 budget, i64 stride)
                                                            ; row i at rows + i * stride
    i64 bpf_tail_entry(ptr ctx, i64 depth, i64 r0..r9)      ; runtime mode: the entry
                                                            ; (bpf_main calls it at depth 0)

Runtime mode exports the callback subprograms (lddw func targets, same
signature as a callee) for bpf_loop / for_each, and lowers the three control
helpers (tail call, loop, for_each) as block ends that hand r0-r9 over in
``Ctx.regs``; after bpf_tail_call, ``FAULT_TAIL`` means the target ran and
the function returns its r0.

A callee starts with the caller's r0-r9 (as in the interpreter, whose frames
share one register file), its own zeroed 512-byte frame and r10 at that
frame's top (trusted mode, when r10 is only ever the base of in-frame
``r10 + const`` accesses: only the byte range those accesses of the function
touch is zeroed -- nothing else can observe the frame -- which LLVM then
mostly folds into the first stores; a 4-deep call chain no longer clears
2 KiB per call); the caller's registers are untouched by construction (they are
the caller's SSA values), only r0 comes back. A fault anywhere stores its
data in the context and returns 0; callers check ``fault_kind`` after every
call and return at once, so the native stack unwinds by ordinary returns.

Trusted mode, plain (non-runtime) programs: a forward data-flow pass
(``mem_pointers``) finds the registers of the main function that provably
hold input-memory pointers (r1 at entry, copies, pointer +/- constant,
pointer + register); their accesses are a single GEP from the ``mem`` base
instead of the stack-or-memory select, which lets LLVM hoist, strength-reduce
and vectorise loops over the input. The same pass started from r10 (when no
instruction writes r10) finds the pointers into the function's own frame
(``mov r3, r10; add r3, r1``): a GEP from the frame's bottom.

Undefined behaviour LLVM would exploit is kept out: division and modulo
divide by a substitute 1 when the divisor is 0 or the operation is
INT_MIN / -1 (then a ``select`` picks the ISA's result: 0 / the dividend for
a zero divisor; INT_MIN / 0 for the overflow, which is what x / 1 and x % 1
give); shift amounts are masked to the width.

Budget (checked mode): each basic block subtracts its instruction count at
entry (an lddw counts once, as in the interpreter) and exits with
``FAULT_BUDGET`` when the count would go negative. The count is exact at
block boundaries, so ``executed`` of a normal run equals the interpreter's;
a fault inside a block stores how many of the block's instructions it did
not complete, so ``executed`` of a fault is exact too. Only the point where
the budget runs out is block-granular: the JIT stops before a block that
does not fit entirely (reported at the slot where the interpreter would have
stopped, with ``executed = budget``), so a memory fault or a helper's side
effect in the part of that block that would still have fit is not reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from llvmlite import ir

from ebpfvm.helpers.registry import HelperRegistry
from ebpfvm.isa.alu import SIGNED_DIVISION_OFFSET, AluOp
from ebpfvm.isa.forms import FORMS, Kind
from ebpfvm.isa.instruction import Instruction, lddw_value
from ebpfvm.isa.jump import CallKind, JmpOp
from ebpfvm.isa.load_store import ATOMIC_FETCH, SIZE_BYTES, AtomicOp, LddwSource
from ebpfvm.isa.opcode import (
    CLASS_MASK,
    OPERATION_MASK,
    SIZE_MASK,
    SOURCE_MASK,
    InsnClass,
    Source,
)
from ebpfvm.isa.targets import slot_target
from ebpfvm.memory import STACK_SIZE, code_address, stack_frame_base
from ebpfvm.program import Program

from . import memory as mm
from .cfg import Block, build_blocks, call_targets, callback_targets, instruction_heads, reachable
from .engine import LOOPS_METADATA
from .irtext import TextFunction, builder_for
from .memory import C1, C8, C32, C64, I8, I16, I32, I64, PTR

HELPER_SYMBOL = "ebpfvm_jit_helper"
MEMORY_SYMBOL = "ebpfvm_jit_memory"
# Slow-path memory operations (runtime mode): ``op`` = size | kind << 8 | atomic imm << 16.
SLOW_LOAD, SLOW_STORE, SLOW_ATOMIC = 0, 1, 2
MAIN = "bpf_main"
# Runtime mode: the program's entry with the callee signature (depth, r0..r9),
# where a bpf_tail_call from another program of the runtime continues.
TAIL_ENTRY = "bpf_tail_entry"
# Helpers whose caller hands r0..r9 over in ``Ctx.regs`` (runtime mode).
TAIL_CALL, FOR_EACH_MAP_ELEM, LOOP = 12, 164, 181
RUN_MANY = "bpf_run_many"
MAX_FRAMES = mm.MAX_FRAMES
BUDGET = 11  # the key of the instructions-left counter among the SSA registers (checked mode)
_TYPES = {1: I8, 2: I16, 4: I32, 8: I64}
_BITS = {8: I8, 16: I16, 32: I32, 64: I64}
_SIGNED = SIGNED_DIVISION_OFFSET


BUILDERS = {"text": TextFunction, "llvmlite": ir.Function}


def sub_name(entry: int) -> str:
    return f"bpf_sub_{entry}"


class ModuleLowering:
    """Lowers a whole program into one LLVM module."""

    def __init__(self, program: Program, *, checked: bool, helpers: HelperRegistry,
                 resolve_pseudo: Callable | None = None, runtime: bool = False,
                 maps_by_handle: dict | None = None, builder: str = "text") -> None:
        if builder not in BUILDERS:
            raise ValueError(f"unknown IR builder {builder!r} (one of {', '.join(BUILDERS)})")
        # Functions with bodies: TextFunction (bodies written as text by
        # irtext.TextBuilder) or llvmlite.ir's own Function and IRBuilder, the
        # reference the text is checked against.
        self.function_class = BUILDERS[builder]
        self.program = program
        self.insns = program.instructions
        self.maps_by_handle = maps_by_handle or {}
        heads = instruction_heads(program)
        self.frame_use = frame_use(program, heads)
        self.r10_pristine = self.frame_use.r10_pristine
        # Trusted mode: when r10 only ever serves as the base of in-frame
        # ``r10 + const`` accesses, nothing but those accesses can reach a frame
        # (a verifier-accepted program cannot forge a stack pointer), so a
        # function needs only the bytes it accesses zeroed, not all 512.
        self.frame_private = not checked and self.frame_use.private
        self.inlined_lookups = 0
        self.checked = checked
        self.helpers = helpers
        self.resolve_pseudo = resolve_pseudo
        self.runtime = runtime
        self.blocks = build_blocks(program, heads)
        self.module = ir.Module(name="ebpf")
        # Loops (a jump back, or callbacks bpf_loop / for_each run repeatedly) keep
        # the full optimisation pipeline at any size the engine allows.
        callbacks = set(callback_targets(program, heads))
        if callbacks or any(succ <= start for start, block in self.blocks.items()
                                            for succ in block.successors):
            self.module.add_named_metadata(LOOPS_METADATA)
        helper_ty = ir.FunctionType(I64, [PTR, I64, I64, I64] + [I64] * 5)
        self.helper_fn = ir.Function(self.module, helper_ty, HELPER_SYMBOL)
        if runtime:
            memory_ty = ir.FunctionType(I64, [PTR, I64, I64, I64, I64, I64, I64])
            self.memory_fn = ir.Function(self.module, memory_ty, MEMORY_SYMBOL)
        self.memset = self.module.declare_intrinsic("llvm.memset", [PTR, I64])
        self.memcpy = None
        self.uses_helpers = False
        sub_ty = ir.FunctionType(I64, [PTR, I64] + [I64] * 10)
        self.subs: dict[int, ir.Function] = {}
        # Functions the runtime calls by address: callbacks (and the tail entry).
        self.exported: list[str] = []
        for entry in call_targets(program, heads):
            fn = self.function_class(self.module, sub_ty, sub_name(entry))
            if runtime and entry in callbacks:
                self.exported.append(fn.name)
            else:
                fn.linkage = "internal"
            self.subs[entry] = fn
        self.main = self.function_class(self.module, ir.FunctionType(I64, [PTR, I64, I64]), MAIN)
        self.tail_entry = None
        if runtime:
            self.tail_entry = self.function_class(self.module, sub_ty, TAIL_ENTRY)
            self.exported.append(TAIL_ENTRY)

    def lower(self) -> ir.Module:
        if self.tail_entry is not None:
            # bpf_main(ctx, r1, r2) = bpf_tail_entry(ctx, depth 0, r0 = 0, r1, r2, 0...)
            FunctionLowering(self, self.tail_entry, 0, is_main=False).lower()
            b = builder_for(self.main.append_basic_block("entry"))
            ctx, r1, r2 = self.main.args
            b.ret(b.call(self.tail_entry, [ctx, C64(0), C64(0), r1, r2] + [C64(0)] * 7))
        else:
            FunctionLowering(self, self.main, 0, is_main=True).lower()
        for entry, fn in self.subs.items():
            FunctionLowering(self, fn, entry, is_main=False).lower()
        self._run_many()
        return self.module

    def _run_many(self) -> None:
        fn = self.function_class(self.module, ir.FunctionType(I64, [PTR, PTR, I64, I64, PTR, I64, I64]), RUN_MANY)
        ctx, rows, n, size, out, budget, stride = fn.args
        entry = fn.append_basic_block("entry")
        head = fn.append_basic_block("head")
        body = fn.append_basic_block("body")
        store = fn.append_basic_block("store")
        done = fn.append_basic_block("done")
        b = builder_for(entry)
        r1 = b.select(b.icmp_unsigned("!=", size, C64(0)), C64(mm.MEM_BASE), C64(0))
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64, "i")
        i.add_incoming(C64(0), entry)
        b.cbranch(b.icmp_unsigned("<", i, n), body, done)
        b.position_at_end(body)
        mm.store_field(b, ctx, mm.F_MEM, b.gep(rows, [b.mul(i, stride)], source_etype=I8))
        mm.store_field(b, ctx, mm.F_MEM_LEN, size)
        mm.store_field(b, ctx, mm.F_BUDGET, budget)
        r0 = b.call(self.main, [ctx, r1, size])
        kind = mm.load_field(b, ctx, mm.F_KIND)
        b.cbranch(b.icmp_unsigned("!=", kind, C64(0)), done, store)
        b.position_at_end(store)
        b.store(r0, b.gep(out, [i], source_etype=I64))
        nxt = b.add(i, C64(1))
        i.add_incoming(nxt, store)
        b.branch(head)
        b.position_at_end(done)
        result = b.phi(I64)
        result.add_incoming(i, head)
        result.add_incoming(i, body)
        b.ret(result)


class FunctionLowering:
    """Lowers the blocks reachable from one entry into one LLVM function."""

    def __init__(self, owner: ModuleLowering, fn: ir.Function, entry: int, *, is_main: bool) -> None:
        self.owner = owner
        self.program = owner.program
        self.checked = owner.checked
        self.fn = fn
        self.entry = entry
        self.is_main = is_main
        self.b = builder_for(fn.append_basic_block("entry"))
        self.ctx = fn.args[0]
        self.depth: ir.Value = C64(0) if is_main else fn.args[1]
        self.llvm_blocks: dict[int, ir.Block] = {}
        self.pc = 0
        self.block: Block | None = None
        self.index = 0  # position of the current instruction in its block
        # One shared exit block per fault kind, its data arriving through phis
        # (fewer blocks and instructions than an exit per access: compile time).
        self.shared: dict[int, tuple[ir.Block, list[ir.PhiInstr]]] = {}
        # SSA registers: the current value of r0..r10 (and BUDGET, checked mode).
        self.values: dict[int, ir.Value] = {}
        self.keys = range(BUDGET + 1 if self.checked else BUDGET)
        self.edges: dict[int, list[tuple[ir.Block, dict[int, ir.Value]]]] = {}  # leader -> edges lowered so far
        self.open_phis: dict[int, dict[int, ir.PhiInstr]] = {}  # loop headers: phis that later edges complete
        self.out: tuple[ir.Block, dict[int, ir.Value]] | None = None

    # -- registers ------------------------------------------------------------
    # Registers are SSA values, never memory: no allocas, loads or stores for
    # LLVM to parse and promote (that was ~40% of the IR). A block starts from
    # the values its predecessors leave; at a join, a phi only for a register
    # whose incoming values differ (blocks are lowered in slot order, so all
    # forward edges are known by then). A block with an edge from a later block
    # (a loop header) gets a phi for every register, completed when that edge
    # is lowered.
    def reg(self, r: int) -> ir.Value:
        return self.values[r]

    def set(self, r: int, value: ir.Value) -> None:
        if value.type != I64:
            value = self.b.zext(value, I64)
        self.values[r] = value

    def flush(self) -> None:
        """The block's registers leave here (the builder's block ends in its
        branch to the block's successors)."""
        self.out = (self.b.block, dict(self.values))

    def add_edge(self, leader: int, source: ir.Block, values: dict[int, ir.Value]) -> None:
        phis = self.open_phis.get(leader)
        if phis is None:
            self.edges.setdefault(leader, []).append((source, values))
        else:
            for key, phi in phis.items():
                phi.add_incoming(values[key], source)

    def enter(self, leader: int) -> None:
        """Registers at the start of ``leader`` (the builder is at its start)."""
        edges = self.edges.pop(leader, [])
        if len(edges) == self.preds.get(leader, 0) and edges:
            first = edges[0][1]
            if len(edges) == 1:  # one way in: its registers as they are
                self.values = dict(first)
                return
            self.values = {}
            for key in self.keys:
                value = first[key]
                if any(values[key] is not value for _, values in edges):
                    value = self.b.phi(I64)
                    for source, values in edges:
                        value.add_incoming(values[key], source)
                self.values[key] = value
            return
        phis = self.open_phis[leader] = {key: self.b.phi(I64) for key in self.keys}
        for source, values in edges:
            for key, phi in phis.items():
                phi.add_incoming(values[key], source)
        self.values = dict(phis)

    def lower(self) -> None:
        b = self.b
        self.regions = mm.Regions(b, self.ctx)
        frame = self.frame = self.regions.frame(b, self.depth)
        n = len(self.program)
        leaders = reachable(self.owner.blocks, self.entry, n)
        lo, hi = 0, STACK_SIZE
        if self.owner.frame_private:
            lo, hi = self.owner.frame_use.frame_range(pc for leader in leaders for pc in self.owner.blocks[leader].slots)
        if hi > lo:
            start = b.gep(frame, [C64(lo)], source_etype=I8) if lo else frame
            b.call(self.owner.memset, [start, C8(0), C64(hi - lo), C1(0)])
        args = self.fn.args
        if self.is_main:
            initial = [C64(0), args[1], args[2]] + [C64(0)] * 7
        else:
            initial = list(args[2:12])
        self.values = dict(enumerate(initial))
        self.values[10] = b.add(C64(stack_frame_base(0) + STACK_SIZE), b.mul(self.depth, C64(-0x1_0000)))
        if self.checked:
            self.values[BUDGET] = mm.load_field(b, self.ctx, mm.F_BUDGET)
        self.mem_in: dict[int, frozenset[int]] = {}
        if not self.checked and not self.owner.runtime and self.is_main:
            self.mem_in = mem_pointers(self.program, self.owner.blocks, leaders, self.entry, frozenset({1}))
        self.stack_in: dict[int, frozenset[int]] = {}
        if not self.checked and not self.owner.runtime and self.owner.r10_pristine:
            # r10 copies +/- offsets stay in this function's frame (trusted: verifier-accepted programs).
            self.stack_in = mem_pointers(self.program, self.owner.blocks, leaders, self.entry, frozenset({10}))
        self.preds = {self.entry: 1}
        for leader in leaders:
            self.llvm_blocks[leader] = self.fn.append_basic_block(f"L{leader}")
            for succ in self.owner.blocks[leader].successors:
                self.preds[succ] = self.preds.get(succ, 0) + 1
        self.add_edge(self.entry, b.block, self.values)
        b.branch(self.llvm_blocks[self.entry])
        for leader in leaders:
            self.lower_block(self.owner.blocks[leader])

    def target(self, pc: int) -> ir.Block:
        """The LLVM block for leader ``pc`` (a fell-off-the-end exit past the program)."""
        if pc >= len(self.program):
            block = self.fn.append_basic_block(f"fell_off_{self.pc}")
            with self.b.goto_block(block):
                self.fault_here(mm.FAULT_FELL_OFF, len(self.program), correction=0)
            return block
        return self.llvm_blocks[pc]

    def shared_exit(self, kind: int, fields: tuple[int, ...]) -> tuple[ir.Block, list[ir.PhiInstr]]:
        """The function's one exit block for ``kind``: stores the phis of
        ``fields`` (filled by each branch to it; checked mode: the budget first),
        the depth and kind."""
        found = self.shared.get(kind)
        if found is None:
            block = self.fn.append_basic_block(f"fault{kind}")
            with self.b.goto_block(block):
                if self.checked:
                    fields = (mm.F_BUDGET, *fields)
                phis = [self.b.phi(I64) for _ in fields]
                for index, phi in zip(fields, phis):
                    mm.store_field(self.b, self.ctx, index, phi)
                mm.store_field(self.b, self.ctx, mm.F_DEPTH, self.depth)
                mm.store_field(self.b, self.ctx, mm.F_KIND, C64(kind))
                self.b.ret(C64(0))
            found = self.shared[kind] = (block, phis)
        return found

    def branch_to_exit(self, cond_bad: ir.Value, kind: int, fields: tuple[int, ...], values: list) -> None:
        """``if cond_bad: exit(kind, values)`` through the shared block."""
        block, phis = self.shared_exit(kind, fields)
        here = self.b.block
        if self.checked:
            values = [self.values[BUDGET], *values]
        for phi, value in zip(phis, values):
            phi.add_incoming(value, here)
        good = self.fn.append_basic_block(f"pc{self.pc}_ok")
        self.b.cbranch(cond_bad, block, good)
        self.b.position_at_end(good)

    def lower_block(self, block: Block) -> None:
        b = self.b
        self.block = block
        b.position_at_end(self.llvm_blocks[block.start])
        self.enter(block.start)
        self.out = None
        if self.checked:
            left = self.values[BUDGET]
            after = b.sub(left, C64(block.length))
            # The budget field itself says how many were left (no separate extra).
            self.branch_to_exit(b.icmp_signed("<", after, C64(0)), mm.FAULT_BUDGET, (mm.F_PC,), [C64(block.start)])
            self.values[BUDGET] = after
        self.r1_map = None  # the map whose handle r1 holds (lddw map_fd r1 earlier in this block)
        self.mem_regs = self.mem_in.get(block.start, frozenset())
        self.stack_regs = self.stack_in.get(block.start, frozenset())
        insns, runtime = self.owner.insns, self.owner.runtime
        for index, pc in enumerate(block.slots):
            self.pc, self.index = pc, index
            insn = insns[pc]
            OPCODE_LOWERING[insn.opcode](self, insn)
            if self.mem_in:
                self.mem_regs = mem_transfer(insn, self.mem_regs)
            if self.stack_in:
                self.stack_regs = mem_transfer(insn, self.stack_regs)
            if runtime:
                self.track_r1_map(insn)
        if not b.block.is_terminated:
            self.flush()
            b.branch(self.target(block.successors[0]))
        if self.out is not None:
            source, values = self.out
            for succ in block.successors:
                if succ < len(self.program):
                    self.add_edge(succ, source, values)

    def track_r1_map(self, insn: Instruction) -> None:
        """Which map's handle r1 holds after ``insn`` (runtime mode: array
        lookups on it are inlined), when an lddw of this block put it there."""
        kind = FORMS[insn.opcode].kind
        if kind is Kind.LDDW and insn.dst == 1 and insn.src in (LddwSource.MAP_FD, LddwSource.MAP_IDX):
            handle = self._resolve(insn, self.program[self.pc + 1])
            found = self.owner.maps_by_handle.get(handle)
            self.r1_map = (handle, found) if found is not None else None
        elif insn.dst == 1 or kind in (Kind.CALL, Kind.CALLX, Kind.ATOMIC, Kind.LDDW):
            self.r1_map = None

    # -- exits ------------------------------------------------------------------
    def store_budget(self) -> None:
        if self.checked:
            mm.store_field(self.b, self.ctx, mm.F_BUDGET, self.values[BUDGET])

    def correction(self) -> int:
        assert self.block is not None
        return self.block.length - self.index

    def fault_here(self, kind: int, pc: int, correction: int | None = None, address: ir.Value | None = None,
                   size: int = 0, write: int = 0) -> None:
        """Record a fault and return 0 (the builder must be in a fresh block)."""
        b = self.b
        self.store_budget()
        mm.store_field(b, self.ctx, mm.F_PC, C64(pc))
        mm.store_field(b, self.ctx, mm.F_EXTRA, C64(self.correction() if correction is None else correction))
        if address is not None:
            mm.store_field(b, self.ctx, mm.F_ADDR, address)
        mm.store_field(b, self.ctx, mm.F_SIZE, C64(size))
        mm.store_field(b, self.ctx, mm.F_WRITE, C64(write))
        mm.store_field(b, self.ctx, mm.F_DEPTH, self.depth)
        mm.store_field(b, self.ctx, mm.F_KIND, C64(kind))
        b.ret(C64(0))

    def fault_unless(self, ok: ir.Value, kind: int, **data) -> None:
        b = self.b
        good = self.fn.append_basic_block(f"pc{self.pc}_ok")
        bad = self.fn.append_basic_block(f"pc{self.pc}_fault")
        b.cbranch(ok, good, bad, )
        b.position_at_end(bad)
        self.fault_here(kind, self.pc, **data)
        b.position_at_end(good)

    def propagate_fault(self) -> None:
        """After a call: return at once when the callee (or helper) faulted."""
        b = self.b
        kind = mm.load_field(b, self.ctx, mm.F_KIND)
        good = self.fn.append_basic_block(f"pc{self.pc}_ret")
        bad = self.fn.append_basic_block(f"pc{self.pc}_unwind")
        b.cbranch(b.icmp_unsigned("!=", kind, C64(0)), bad, good)
        b.position_at_end(bad)
        b.ret(C64(0))
        b.position_at_end(good)

    def return_value(self, value: ir.Value) -> None:
        self.store_budget()
        self.b.ret(value)

    # -- ALU ----------------------------------------------------------------------
    def lower_alu(self, insn: Instruction) -> None:
        is64 = insn.opcode & CLASS_MASK == InsnClass.ALU64
        op = insn.opcode & OPERATION_MASK
        if insn.opcode & SOURCE_MASK == Source.K:
            src = C64(insn.imm & 0xFFFF_FFFF_FFFF_FFFF) if is64 else C32(insn.imm & 0xFFFF_FFFF)
        else:
            src = self.reg(insn.src)
            if not is64:
                src = self.b.trunc(src, I32)
        dst = self.reg(insn.dst)
        if not is64:
            dst = self.b.trunc(dst, I32)
        table = ALU64 if is64 else ALU32
        self.set(insn.dst, table[(op, insn.off)](self, dst, src))

    def add(self, a, b): return self.b.add(a, b)
    def sub(self, a, b): return self.b.sub(a, b)
    def mul(self, a, b): return self.b.mul(a, b)
    def or_(self, a, b): return self.b.or_(a, b)
    def and_(self, a, b): return self.b.and_(a, b)
    def xor(self, a, b): return self.b.xor(a, b)
    def mov(self, a, b): return b

    def _mask(self, b):
        if isinstance(b, ir.Constant):  # shift by an immediate: mask it here, not in IR
            return ir.Constant(b.type, b.constant & (b.type.width - 1))
        return self.b.and_(b, ir.Constant(b.type, b.type.width - 1))

    def lsh(self, a, b): return self.b.shl(a, self._mask(b))
    def rsh(self, a, b): return self.b.lshr(a, self._mask(b))
    def arsh(self, a, b): return self.b.ashr(a, self._mask(b))

    def _safe_divisor(self, a, b, signed: bool):
        """(divisor that is never 0 nor -1 against INT_MIN, b == 0)."""
        t = b.type
        zero = self.b.icmp_unsigned("==", b, ir.Constant(t, 0))
        bad = zero
        if signed:
            overflow = self.b.and_(self.b.icmp_signed("==", b, ir.Constant(t, -1)),
                                   self.b.icmp_unsigned("==", a, ir.Constant(t, 1 << (t.width - 1))))
            bad = self.b.or_(zero, overflow)
        return self.b.select(bad, ir.Constant(t, 1), b), zero

    def div(self, a, b):
        d, zero = self._safe_divisor(a, b, False)
        return self.b.select(zero, ir.Constant(a.type, 0), self.b.udiv(a, d))

    def sdiv(self, a, b):
        d, zero = self._safe_divisor(a, b, True)
        return self.b.select(zero, ir.Constant(a.type, 0), self.b.sdiv(a, d))

    def mod(self, a, b):
        d, zero = self._safe_divisor(a, b, False)
        return self.b.select(zero, a, self.b.urem(a, d))

    def smod(self, a, b):
        d, zero = self._safe_divisor(a, b, True)
        return self.b.select(zero, a, self.b.srem(a, d))

    def _movsx(self, bits: int):
        def movsx(self, a, b):
            return self.b.sext(self.b.trunc(b, _BITS[bits]), a.type)
        return movsx

    def lower_neg(self, insn: Instruction) -> None:
        value = self.reg(insn.dst)
        if insn.opcode & CLASS_MASK != InsnClass.ALU64:
            value = self.b.trunc(value, I32)
        self.set(insn.dst, self.b.neg(value))

    def lower_end(self, insn: Instruction) -> None:
        ty = _BITS[insn.imm]
        value = self.reg(insn.dst)
        if ty is not I64:
            value = self.b.trunc(value, ty)
        swap = insn.opcode & CLASS_MASK == InsnClass.ALU64 or insn.opcode & SOURCE_MASK == Source.X
        if swap and ty is not I8:
            value = self.b.bswap(value)
        self.set(insn.dst, value)

    # -- jumps, calls, exit -----------------------------------------------------------
    def lower_ja(self, insn: Instruction) -> None:
        self.flush()
        self.b.branch(self.target(slot_target(insn, self.pc)))

    def lower_jump(self, insn: Instruction) -> None:
        b = self.b
        is32 = insn.opcode & CLASS_MASK == InsnClass.JMP32
        a = self.reg(insn.dst)
        if insn.opcode & SOURCE_MASK == Source.K:
            c = C32(insn.imm & 0xFFFF_FFFF) if is32 else C64(insn.imm & 0xFFFF_FFFF_FFFF_FFFF)
        else:
            c = self.reg(insn.src)
            if is32:
                c = b.trunc(c, I32)
        if is32:
            a = b.trunc(a, I32)
        op = insn.opcode & OPERATION_MASK
        if op == JmpOp.JSET:
            cond = b.icmp_unsigned("!=", b.and_(a, c), ir.Constant(a.type, 0))
        else:
            predicate, signed = CONDITIONS[op]
            cond = (b.icmp_signed if signed else b.icmp_unsigned)(predicate, a, c)
        self.flush()
        b.cbranch(cond, self.target(slot_target(insn, self.pc)), self.target(self.pc + 1))

    def lower_exit(self, insn: Instruction) -> None:
        self.return_value(self.reg(0))

    def lower_call(self, insn: Instruction) -> None:
        if insn.src == CallKind.LOCAL:
            self.call_local(slot_target(insn, self.pc))
        elif insn.src == CallKind.HELPER:
            if self.owner.helpers.get(insn.imm) is None:
                blk = self.fn.append_basic_block(f"pc{self.pc}_unknown")
                self.b.branch(blk)
                self.b.position_at_end(blk)
                mm.store_field(self.b, self.ctx, mm.F_ADDR, C64(insn.imm & 0xFFFF_FFFF_FFFF_FFFF))
                self.fault_here(mm.FAULT_UNKNOWN_HELPER, self.pc)
                self.b.position_at_end(self.fn.append_basic_block(f"pc{self.pc}_dead"))
                return
            if insn.imm == 1 and self.inline_array_lookup():
                return
            self.call_helper(C64(insn.imm & 0xFFFF_FFFF_FFFF_FFFF))
        else:
            blk = self.fn.append_basic_block(f"pc{self.pc}_kfunc")
            self.b.branch(blk)
            self.b.position_at_end(blk)
            mm.store_field(self.b, self.ctx, mm.F_ADDR, C64(insn.imm & 0xFFFF_FFFF_FFFF_FFFF))
            self.fault_here(mm.FAULT_KFUNC, self.pc)
            self.b.position_at_end(self.fn.append_basic_block(f"pc{self.pc}_dead"))

    def inline_array_lookup(self) -> bool:
        """bpf_map_lookup_elem on a plain array whose handle an lddw put in r1:
        r0 = index < max_entries ? value address : 0, computed natively when
        the key (at r2) is natively mapped; otherwise the helper runs."""
        from ebpfvm.maps.base import VALUES_OFFSET

        handle, bpf_map = self.r1_map if self.r1_map is not None else (0, None)
        if (not self.owner.runtime or bpf_map is None or not lookup_is_inlinable(self.owner.helpers)
                or getattr(bpf_map, "map_type", None) != "array" or getattr(bpf_map, "percpu", True)):
            return False
        self.owner.inlined_lookups += 1
        b = self.b
        for r in range(1, 6):  # read here, so the helper branch below defines none of them
            self.reg(r)
        key_address = self.reg(2)
        host, ok = mm.translate_runtime(b, self.ctx, self.regions, self.depth, key_address, 4, False)
        fast = self.fn.append_basic_block(f"pc{self.pc}_inline")
        slow = self.fn.append_basic_block(f"pc{self.pc}_lookup")
        join = self.fn.append_basic_block(f"pc{self.pc}_looked_up")
        b.cbranch(ok, fast, slow)
        b.position_at_end(fast)
        index = b.zext(b.load(host, typ=I32, align=1), I64)
        address = b.add(C64(handle + VALUES_OFFSET), b.mul(index, C64(bpf_map.element_stride)))
        inline = b.select(b.icmp_unsigned("<", index, C64(bpf_map.max_entries)), address, C64(0))
        fast_end = b.block
        b.branch(join)
        b.position_at_end(slow)
        self.call_helper(C64(1))
        helper_r0 = self.reg(0)
        slow_end = b.block
        b.branch(join)
        b.position_at_end(join)
        r0 = b.phi(I64)
        r0.add_incoming(inline, fast_end)
        r0.add_incoming(helper_r0, slow_end)
        self.set(0, r0)
        return True

    def lower_callx(self, insn: Instruction) -> None:
        self.call_helper(self.reg(insn.dst))

    def call_local(self, target: int) -> None:
        b = self.b
        deeper = b.add(self.depth, C64(1))
        self.fault_unless(b.icmp_unsigned("<", deeper, C64(MAX_FRAMES)), mm.FAULT_CALL_DEPTH)
        self.store_budget()
        r0 = b.call(self.owner.subs[target], [self.ctx, deeper] + [self.reg(r) for r in range(10)])
        self.propagate_fault()
        if self.checked:
            self.values[BUDGET] = mm.load_field(b, self.ctx, mm.F_BUDGET)
        self.set(0, r0)

    def call_helper(self, helper_id: ir.Value) -> None:
        b = self.b
        self.owner.uses_helpers = True
        self.store_budget()
        mm.store_field(b, self.ctx, mm.F_PC, C64(self.pc))
        mm.store_field(b, self.ctx, mm.F_EXTRA, C64(self.correction()))
        # callx (helper id in a register) may name any helper: the control helpers too.
        dynamic = not isinstance(helper_id, ir.Constant)
        control = self.owner.runtime and (dynamic or helper_id.constant in (TAIL_CALL, FOR_EACH_MAP_ELEM, LOOP))
        if control:  # the tail call's target / the callbacks start from the caller's registers
            for r in range(10):
                b.store(self.reg(r), b.gep(self.ctx, [C32(0), C32(mm.F_REGS), C32(r)], inbounds=True,
                                           source_etype=mm.CTX_TYPE))
        r0 = b.call(self.owner.helper_fn, [self.ctx, C64(self.pc), self.depth, helper_id]
                    + [self.reg(r) for r in range(1, 6)])
        if control and (dynamic or helper_id.constant == TAIL_CALL):
            self.after_tail_call(r0)
        else:
            self.propagate_fault()
        if control and self.checked:  # callbacks drew on the budget
            self.values[BUDGET] = mm.load_field(b, self.ctx, mm.F_BUDGET)
        self.set(0, r0)

    def after_tail_call(self, r0: ir.Value) -> None:
        """bpf_tail_call returns FAULT_TAIL when its target ran (in place of this
        function, on the same context and budget): return the target's r0 at once."""
        b = self.b
        kind = mm.load_field(b, self.ctx, mm.F_KIND)
        good = self.fn.append_basic_block(f"pc{self.pc}_no_tail")
        taken = self.fn.append_basic_block(f"pc{self.pc}_tail")
        bad = self.fn.append_basic_block(f"pc{self.pc}_unwind")
        switch = b.switch(kind, bad)
        switch.add_case(C64(0), good)
        switch.add_case(C64(mm.FAULT_TAIL), taken)
        b.position_at_end(taken)
        mm.store_field(b, self.ctx, mm.F_KIND, C64(0))
        b.ret(r0)  # the budget in the context is the target's
        b.position_at_end(bad)
        b.ret(C64(0))
        b.position_at_end(good)

    # -- memory --------------------------------------------------------------------------
    def slow_access(self, base: int, off: int, size: int, write: bool, fast, slow_op: int,
                    value: ir.Value = None, expected: ir.Value = None) -> ir.Value | None:
        """Runtime mode: ``fast(host)`` when the address is natively mapped,
        else the Python slow path (context hooks, faults); the loaded/old value."""
        b = self.b
        slot = self.frame_slot(base, off, size)
        if slot is not None:
            return fast(slot)
        address = b.add(self.reg(base), C64(off & 0xFFFF_FFFF_FFFF_FFFF))
        host, ok = mm.translate_runtime(b, self.ctx, self.regions, self.depth, address, size, write)
        fast_blk = self.fn.append_basic_block(f"pc{self.pc}_fast")
        slow_blk = self.fn.append_basic_block(f"pc{self.pc}_slow")
        join = self.fn.append_basic_block(f"pc{self.pc}_join")
        b.cbranch(ok, fast_blk, slow_blk)
        b.position_at_end(fast_blk)
        fast_value = fast(host)
        fast_end = b.block
        b.branch(join)
        b.position_at_end(slow_blk)
        self.store_budget()
        mm.store_field(b, self.ctx, mm.F_PC, C64(self.pc))
        mm.store_field(b, self.ctx, mm.F_EXTRA, C64(self.correction()))
        slow_value = b.call(self.owner.memory_fn, [self.ctx, C64(self.pc), self.depth, address, C64(slow_op),
                                                   value if value is not None else C64(0),
                                                   expected if expected is not None else C64(0)])
        self.propagate_fault()
        slow_end = b.block
        b.branch(join)
        b.position_at_end(join)
        if fast_value is None:
            return None
        phi = b.phi(I64)
        phi.add_incoming(fast_value, fast_end)
        phi.add_incoming(slow_value, slow_end)
        return phi

    def frame_slot(self, base: int, off: int, size: int) -> ir.Value | None:
        """``r10 + off`` when r10 is never written: a GEP into the running
        frame (bounds known at compile time); None otherwise."""
        w = STACK_SIZE + off
        if base != 10 or not self.owner.r10_pristine or not 0 <= w <= STACK_SIZE - size:
            return None
        return self.b.gep(self.frame, [C64(w)], source_etype=I8)

    def address(self, base: int, off: int, size: int, write: bool) -> ir.Value:
        b = self.b
        slot = self.frame_slot(base, off, size)
        if slot is not None:
            return slot
        address = b.add(self.reg(base), C64(off & 0xFFFF_FFFF_FFFF_FFFF))
        if base in self.mem_regs:  # trusted, provably an input-memory pointer: no stack test
            return b.gep(self.regions.mem, [b.sub(address, C64(mm.MEM_BASE))], source_etype=I8)
        if base in self.stack_regs:  # trusted, provably in this function's frame: a GEP from its bottom
            return b.gep(self.frame, [b.add(b.sub(address, self.reg(10)), C64(STACK_SIZE))], source_etype=I8)
        host, ok = mm.translate(b, self.regions, self.depth, address, size, self.checked)
        if ok is not None:
            self.branch_to_exit(b.not_(ok), mm.FAULT_MEMORY, (mm.F_PC, mm.F_EXTRA, mm.F_ADDR, mm.F_SIZE, mm.F_WRITE),
                                [C64(self.pc), C64(self.correction()), address, C64(size), C64(int(write))])
        return host

    def lower_load(self, insn: Instruction, signed: bool = False) -> None:
        size = SIZE_BYTES[insn.opcode & SIZE_MASK]
        if self.owner.runtime:
            def fast(host):
                value = self.b.load(host, typ=_TYPES[size], align=1)
                return self.b.zext(value, I64) if size < 8 else value
            value = self.slow_access(insn.src, insn.off, size, False, fast, size | SLOW_LOAD << 8)
            if signed and size < 8:
                value = self.b.sext(self.b.trunc(value, _TYPES[size]), I64)
            self.set(insn.dst, value)
            return
        host = self.address(insn.src, insn.off, size, False)
        value = self.b.load(host, typ=_TYPES[size], align=1)
        if size < 8:
            value = (self.b.sext if signed else self.b.zext)(value, I64)
        self.set(insn.dst, value)

    def lower_load_sx(self, insn: Instruction) -> None:
        self.lower_load(insn, signed=True)

    def _store(self, insn: Instruction, value: ir.Value) -> None:
        size = SIZE_BYTES[insn.opcode & SIZE_MASK]
        if self.owner.runtime:
            def fast(host):
                self.b.store(self.b.trunc(value, _TYPES[size]) if size < 8 else value, host, align=1)
            self.slow_access(insn.dst, insn.off, size, True, fast, size | SLOW_STORE << 8, value)
            return
        host = self.address(insn.dst, insn.off, size, True)
        if size < 8:
            value = self.b.trunc(value, _TYPES[size])
        self.b.store(value, host, align=1)

    def lower_store_imm(self, insn: Instruction) -> None:
        self._store(insn, C64(insn.imm & 0xFFFF_FFFF_FFFF_FFFF))

    def lower_store_reg(self, insn: Instruction) -> None:
        self._store(insn, self.reg(insn.src))

    def lower_atomic(self, insn: Instruction) -> None:
        b = self.b
        size = SIZE_BYTES[insn.opcode & SIZE_MASK]
        ty = _TYPES[size]
        src64, r0 = self.reg(insn.src), self.reg(0)
        src = b.trunc(src64, ty) if size == 4 else src64
        cmpxchg = insn.imm == AtomicOp.CMPXCHG
        op = ATOMIC_RMW.get(insn.imm & ~ATOMIC_FETCH, "xchg") if not cmpxchg else None

        def fast(host):
            if cmpxchg:
                expected = b.trunc(r0, ty) if size == 4 else r0
                old = b.extract_value(b.cmpxchg(host, expected, src, "seq_cst", "seq_cst"), 0)
            else:
                old = b.atomic_rmw(op, host, src, "seq_cst")
            return b.zext(old, I64) if size == 4 else old

        if self.owner.runtime:
            old = self.slow_access(insn.dst, insn.off, size, True, fast,
                                   size | SLOW_ATOMIC << 8 | (insn.imm & 0xFFFF) << 16, src64, r0)
        else:
            old = fast(self.address(insn.dst, insn.off, size, True))
        if cmpxchg:
            self.set(0, old)
        elif insn.imm & ATOMIC_FETCH or insn.imm == AtomicOp.XCHG:
            self.set(insn.src, old)

    def lower_lddw(self, insn: Instruction) -> None:
        tail = self.program[self.pc + 1]
        if insn.src == LddwSource.IMM64:
            self.set(insn.dst, C64(lddw_value(insn, tail)))
        elif insn.src == LddwSource.FUNC:
            self.set(insn.dst, C64(code_address(slot_target(insn, self.pc))))
        elif (resolved := self._resolve(insn, tail)) is not None:
            self.set(insn.dst, C64(resolved & 0xFFFF_FFFF_FFFF_FFFF))
        else:
            blk = self.fn.append_basic_block(f"pc{self.pc}_pseudo")
            self.b.branch(blk)
            self.b.position_at_end(blk)
            self.fault_here(mm.FAULT_UNRESOLVED, self.pc)
            self.b.position_at_end(self.fn.append_basic_block(f"pc{self.pc}_dead"))

    def _resolve(self, insn: Instruction, tail: Instruction) -> int | None:
        resolve = self.owner.resolve_pseudo
        return resolve(self.pc, insn, tail) if resolve is not None else None

    def lower_ld_packet(self, insn: Instruction) -> None:
        """LD_ABS/LD_IND: r0 = big-endian bytes at the 32-bit signed offset of the
        input memory, or return 0 from the current function when out of bounds."""
        b = self.b
        size = SIZE_BYTES[insn.opcode & SIZE_MASK]
        offset = C32(insn.imm & 0xFFFF_FFFF)
        if FORMS[insn.opcode].kind is Kind.LD_IND:
            offset = b.add(b.trunc(self.reg(insn.src), I32), offset)
        offset = b.sext(offset, I64)
        if self.owner.runtime:  # the packet region moves with helpers: reload it
            mem, mem_len = mm.load_field(b, self.ctx, mm.F_MEM, PTR), mm.load_field(b, self.ctx, mm.F_MEM_LEN)
        else:
            mem, mem_len = self.regions.mem, self.regions.mem_len
        ok = b.and_(b.icmp_signed(">=", offset, C64(0)),
                    b.icmp_signed("<=", b.add(offset, C64(size)), mem_len))
        good = self.fn.append_basic_block(f"pc{self.pc}_in")
        bad = self.fn.append_basic_block(f"pc{self.pc}_out")
        b.cbranch(ok, good, bad)
        b.position_at_end(bad)
        self.return_value(C64(0))
        b.position_at_end(good)
        value = b.load(b.gep(mem, [offset], source_etype=I8), typ=_TYPES[size], align=1)
        if size > 1:
            value = b.bswap(value)
        self.set(0, value)


ATOMIC_RMW = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and", AtomicOp.XOR: "xor"}

CONDITIONS = {
    JmpOp.JEQ: ("==", False), JmpOp.JNE: ("!=", False),
    JmpOp.JGT: (">", False), JmpOp.JGE: (">=", False), JmpOp.JLT: ("<", False), JmpOp.JLE: ("<=", False),
    JmpOp.JSGT: (">", True), JmpOp.JSGE: (">=", True), JmpOp.JSLT: ("<", True), JmpOp.JSLE: ("<=", True),
}

L = FunctionLowering
_COMMON = {
    (AluOp.ADD, 0): L.add, (AluOp.SUB, 0): L.sub, (AluOp.MUL, 0): L.mul,
    (AluOp.DIV, 0): L.div, (AluOp.DIV, _SIGNED): L.sdiv, (AluOp.MOD, 0): L.mod, (AluOp.MOD, _SIGNED): L.smod,
    (AluOp.OR, 0): L.or_, (AluOp.AND, 0): L.and_, (AluOp.XOR, 0): L.xor,
    (AluOp.LSH, 0): L.lsh, (AluOp.RSH, 0): L.rsh, (AluOp.ARSH, 0): L.arsh, (AluOp.MOV, 0): L.mov,
}
# Operands are i64 (ALU64) or the low i32 halves (ALU, zero-extended by ``set``).
ALU64: dict[tuple[int, int], Callable] = {**_COMMON, (AluOp.MOV, 8): L._movsx(None, 8),
                                          (AluOp.MOV, 16): L._movsx(None, 16), (AluOp.MOV, 32): L._movsx(None, 32)}
ALU32: dict[tuple[int, int], Callable] = {**_COMMON, (AluOp.MOV, 8): L._movsx(None, 8),
                                          (AluOp.MOV, 16): L._movsx(None, 16)}

KIND_LOWERING: dict[Kind, Callable[[FunctionLowering, Instruction], None]] = {
    Kind.ALU: L.lower_alu, Kind.NEG: L.lower_neg, Kind.END: L.lower_end,
    Kind.JA: L.lower_ja, Kind.JUMP: L.lower_jump, Kind.CALL: L.lower_call, Kind.CALLX: L.lower_callx,
    Kind.EXIT: L.lower_exit, Kind.LOAD: L.lower_load, Kind.LOAD_SX: L.lower_load_sx,
    Kind.STORE_IMM: L.lower_store_imm, Kind.STORE_REG: L.lower_store_reg, Kind.ATOMIC: L.lower_atomic,
    Kind.LDDW: L.lower_lddw, Kind.LD_ABS: L.lower_ld_packet, Kind.LD_IND: L.lower_ld_packet,
}
# The lowering method of every opcode (one lookup per instruction).
OPCODE_LOWERING = {opcode: KIND_LOWERING[form.kind] for opcode, form in FORMS.items()}

_WRITES_DST = {Kind.ALU, Kind.NEG, Kind.END, Kind.LOAD, Kind.LOAD_SX, Kind.LDDW}


# What an instruction does to the registers ``mem_transfer`` tracks, per opcode
# (a table: this runs several times per instruction, and hashing the ``Kind``
# enum members it used to test is slow Python code).
_KEEPS, _CLOBBERS_CALLER_SAVED, _ATOMIC, _KILLS_DST, _MOV_X, _ADD_K, _ADD_X, _SUB_K = range(8)


def _mem_effect(opcode: int, kind: Kind) -> int:
    if kind in (Kind.CALL, Kind.CALLX, Kind.LD_ABS, Kind.LD_IND):
        return _CLOBBERS_CALLER_SAVED
    if kind is Kind.ATOMIC:
        return _ATOMIC
    if kind not in _WRITES_DST:
        return _KEEPS
    if kind is Kind.ALU and opcode & CLASS_MASK == InsnClass.ALU64:
        op, by_reg = opcode & OPERATION_MASK, opcode & SOURCE_MASK == Source.X
        if op == AluOp.MOV and by_reg:
            return _MOV_X
        if op == AluOp.ADD:
            return _ADD_X if by_reg else _ADD_K
        if op == AluOp.SUB and not by_reg:
            return _SUB_K
    return _KILLS_DST


_MEM_EFFECT = {opcode: _mem_effect(opcode, form.kind) for opcode, form in FORMS.items()}
_CALLER_SAVED = frozenset(range(6))


def mem_transfer(insn: Instruction, known: frozenset[int]) -> frozenset[int]:
    """Registers known to point into the input memory after ``insn`` (trusted
    mode: pointer + scalar stays in its region for verifier-accepted programs;
    anything the analysis cannot follow becomes unknown)."""
    if not known:  # nothing known stays nothing: every rule below needs a known register
        return known
    effect = _MEM_EFFECT.get(insn.opcode, _KEEPS)
    if effect == _KEEPS:
        return known
    if effect == _CLOBBERS_CALLER_SAVED:
        return known - _CALLER_SAVED
    if effect == _ATOMIC:
        return known - {0, insn.src}
    dst = insn.dst
    if effect != _KILLS_DST and insn.off == 0:
        if effect == _MOV_X:
            pointer = insn.src in known
        elif effect == _ADD_X:
            pointer = dst in known or insn.src in known
        else:  # pointer +/- constant
            pointer = dst in known
        if pointer:
            return known if dst in known else known | {dst}
    return known - {dst} if dst in known else known


def mem_pointers(program: Program, blocks: dict[int, Block], leaders: list[int], entry: int,
                 initial: frozenset[int]) -> dict[int, frozenset[int]]:
    """Per leader: the registers that hold pointers into the region the registers
    ``initial`` point to at ``entry`` ({1}: the input memory; {10}: the
    function's own frame) on every path to it."""
    state: dict[int, frozenset[int]] = {entry: initial}
    work = [entry]
    n = len(program)
    while work:
        leader = work.pop()
        known = state[leader]
        for pc in blocks[leader].slots:
            known = mem_transfer(program[pc], known)
        for succ in blocks[leader].successors:
            if succ >= n:
                continue
            old = state.get(succ)
            new = known if old is None else old & known
            if new != old:
                state[succ] = new
                work.append(succ)
    return state


def _opcodes(*kinds: Kind) -> frozenset[int]:
    return frozenset(opcode for opcode, form in FORMS.items() if form.kind in kinds)


_LOADS = _opcodes(Kind.LOAD, Kind.LOAD_SX)
_STORES_IMM = _opcodes(Kind.STORE_IMM)
_STORES_REG = _opcodes(Kind.STORE_REG, Kind.ATOMIC)  # the base is dst, src a value register
_WRITES_DST_OPCODES = _opcodes(*_WRITES_DST)
_ATOMICS = _opcodes(Kind.ATOMIC)
_NO_REGISTERS = _opcodes(Kind.CALL, Kind.EXIT, Kind.JA, Kind.LDDW)


@dataclass(frozen=True)
class FrameUse:
    """How a program uses r10, from one scan of its instructions."""

    r10_pristine: bool  # no instruction writes r10
    private: bool  # ...and r10 serves only as the base of in-frame ``r10 + const`` accesses
    access: dict[int, tuple[int, int]]  # slot -> (offset into the frame, size) of such an access

    def frame_range(self, slots: Iterable[int]) -> tuple[int, int]:
        """The byte range of the frame that the in-frame accesses at ``slots`` touch."""
        lo, hi = STACK_SIZE, 0
        for pc in slots:
            found = self.access.get(pc)
            if found is not None:
                lo, hi = min(lo, found[0]), max(hi, found[0] + found[1])
        return lo, hi


def frame_use(program: Program, heads: list[int]) -> FrameUse:
    """Scan the instructions at ``heads``: writes of r10, in-frame accesses,
    and any other use of r10 (a copy, arithmetic, a stored stack address),
    after which the frame is no longer private to its accesses."""
    insns = program.instructions
    access: dict[int, tuple[int, int]] = {}
    pristine = private = True
    for pc in heads:
        insn = insns[pc]
        opcode, src, dst = insn.opcode, insn.src, insn.dst
        if opcode not in FORMS:
            continue
        if (opcode in _WRITES_DST_OPCODES and dst == 10) or (opcode in _ATOMICS and src == 10):
            pristine = False
        base = src if opcode in _LOADS else dst if opcode in _STORES_IMM or opcode in _STORES_REG else None
        if base == 10:
            size = SIZE_BYTES[opcode & SIZE_MASK]
            w = STACK_SIZE + insn.off
            if 0 <= w <= STACK_SIZE - size:
                access[pc] = (w, size)
        if opcode in _NO_REGISTERS or (src != 10 and dst != 10):
            continue
        if opcode in _LOADS or opcode in _STORES_IMM:
            escapes = pc not in access
        elif opcode in _STORES_REG:
            escapes = src == 10 or pc not in access
        else:
            escapes = True
        private = private and not escapes
    return FrameUse(pristine, private and pristine, access)


def lookup_is_inlinable(helpers: HelperRegistry) -> bool:
    """Helper 1 is the registry's own bpf_map_lookup_elem, whose array
    lookups the lowering may do natively (runtime mode)."""
    from ebpfvm.helpers.maps import map_lookup_elem
    helper = helpers.get(1)
    return helper is not None and helper.fn is map_lookup_elem


_CALL_OPCODES = _opcodes(Kind.CALL)
_LDDW_OPCODES = _opcodes(Kind.LDDW)


def lowering_inputs(program: Program, helpers: HelperRegistry, resolve_pseudo: Callable | None = None,
                    maps_by_handle: dict | None = None) -> tuple[str, ...]:
    """What the lowering reads besides the program and the mode, as text for a
    cache key: which called helpers exist (and whether helper 1 is the map
    lookup the lowering may inline), the value of every pseudo lddw, and the
    facts of the maps whose lookups it may inline."""
    insns = program.instructions
    parts = [f"inline:{lookup_is_inlinable(helpers)}"]
    for pc in instruction_heads(program):
        insn = insns[pc]
        if insn.opcode in _CALL_OPCODES and insn.src == CallKind.HELPER:
            parts.append(f"h{insn.imm}:{helpers.get(insn.imm) is not None}")
        elif (insn.opcode in _LDDW_OPCODES and resolve_pseudo is not None
              and insn.src not in (LddwSource.IMM64, LddwSource.FUNC)):
            parts.append(f"p{pc}:{resolve_pseudo(pc, insn, insns[pc + 1])}")
    for handle, bpf_map in sorted((maps_by_handle or {}).items()):
        parts.append(f"m{handle}:" + ":".join(str(getattr(bpf_map, name, None)) for name in
                                             ("map_type", "percpu", "element_stride", "max_entries")))
    return tuple(parts)


def lower_program(program: Program, *, checked: bool, helpers: HelperRegistry,
                  resolve_pseudo: Callable | None = None, runtime: bool = False,
                  maps_by_handle: dict | None = None, builder: str = "text") -> ModuleLowering:
    lowering = ModuleLowering(program, checked=checked, helpers=helpers, resolve_pseudo=resolve_pseudo,
                              runtime=runtime, maps_by_handle=maps_by_handle, builder=builder)
    lowering.lower()
    return lowering
