"""Kernel-format verifier logs (``log_level`` 1 and 2), as Linux 6.18 prints them.

Built only when ``log_level >= 1``: :func:`verifier.explore.explore` calls a
:class:`LogBuilder` at each processed instruction.  Matching the kernel exactly
(checked against the live kernel in ``tests/test_verifier_log.py``):

* the initial ``0: R1=ctx() R10=fp0`` line; each instruction as
  ``N: (op) text`` followed, after the kernel's column alignment, by
  ``; R..=..`` for the registers the instruction read or wrote and the stack
  slots it changed; ``exit`` prints no state;
* at level 2, ``from A to B: <state>`` / ``B: <state>`` when a branch is
  popped; at level 1 only the failing path survives (the kernel rewinds the
  log to the branch instruction and continues it with `` B: <state>``);
* the ``Live regs before insn:`` table (level 2) for programs without calls;
* the error line, ``verification time N usec``, ``stack depth N`` and the
  statistics line.

Not reproduced: ``mark_precise`` backtracking lines, stack-liveness debug
lines (``(0) frame 0 insn 3 +written -8``), ``safe`` pruning notes, BTF line
info, and the state print after a branch whose outcome is known.
"""

from __future__ import annotations

import re

from .state import BPF_REG_FP, Reg, RegType, Slot, State

BPF_LOG_MIN_ALIGNMENT = 40
BPF_LOG_ALIGNMENT = 8


def _map_desc(reg: Reg, maps) -> str:
    if maps is None or not (0 <= reg.map < len(maps)):
        return ""
    m = maps[reg.map]
    name = getattr(m, "name", "") or ""
    ks = getattr(m, "key_size", 0)
    vs = getattr(m, "value_size", 0)
    return (f"map={name}," if name else "") + f"ks={ks},vs={vs}"


def format_reg(reg: Reg, maps=None) -> str:
    """A register as 6.18's ``print_verifier_state`` writes it."""
    t = reg.type
    if t is RegType.SCALAR:
        return reg.var.format(id=reg.id)
    var_zero = reg.var.is_const() and reg.var.value == 0
    if t is RegType.PTR_TO_STACK and var_zero and not reg.id:
        return f"fp{reg.off}"
    parts = []
    if reg.id:
        parts.append(f"id={reg.id}")
    if reg.ref_obj_id:
        parts.append(f"ref_obj_id={reg.ref_obj_id}")
    if t in (RegType.PTR_TO_MAP_VALUE, RegType.PTR_TO_MAP_VALUE_OR_NULL, RegType.CONST_PTR_TO_MAP,
             RegType.PTR_TO_MAP_KEY):
        desc = _map_desc(reg, maps)
        if desc:
            parts.append(desc)
    if reg.off:
        parts.append(f"off={reg.off}")
    if t in (RegType.PTR_TO_PACKET, RegType.PTR_TO_PACKET_META):
        parts.append(f"r={reg.range}")
    if t in (RegType.PTR_TO_MEM, RegType.PTR_TO_MEM_OR_NULL) and reg.mem_size:
        parts.append(f"mem_size={reg.mem_size}")
    if not var_zero:
        inner = reg.var.format()
        if inner.startswith("scalar("):
            inner = inner[len("scalar("):-1]
        else:
            inner = f"imm={inner}"
        if inner:
            parts.append(inner)
    return f"{t.value}(" + ",".join(parts) + ")"


def _slot_text(slot, maps) -> str | None:
    if slot.spilled is not None and all(k is Slot.SPILL for k in slot.kinds):
        return format_reg(slot.spilled, maps)
    if all(k is Slot.INVALID for k in slot.kinds):
        return None
    return "".join({Slot.INVALID: "?", Slot.MISC: "m", Slot.ZERO: "0", Slot.SPILL: "r"}[k]
                   for k in reversed(slot.kinds))


def format_state(state: State, maps=None, regs=None, slots=None) -> str:
    """``R0=.. R1=ctx() R10=fp0 fp-8=mmmmmmmm``: every initialised register
    and stack slot, or only ``regs``/``slots`` when given."""
    frame = state.frame
    out = []
    for i, reg in enumerate(frame.regs):
        if reg.type is RegType.NOT_INIT or (regs is not None and i not in regs):
            continue
        out.append(f"R{i}={format_reg(reg, maps)}")
    for index in sorted(frame.stack):
        if slots is not None and index not in slots:
            continue
        text = _slot_text(frame.stack[index], maps)
        if text is not None:
            out.append(f"fp{-8 * (index + 1)}={text}")
    return " ".join(out)


def stats_line(stats) -> str:
    return (f"processed {stats.processed_insns} insns (limit 1000000) max_states_per_insn "
            f"{stats.max_states_per_insn} total_states {stats.total_states} peak_states "
            f"{stats.peak_states} mark_read {stats.mark_read}")


def _used_regs(insn) -> tuple[set[int], set[int]]:
    """(read, written) registers of one instruction, as liveness sees them."""
    op = insn.opcode
    cls = op & 0x07
    if cls in (0x04, 0x07):  # ALU / ALU64
        code = op & 0xF0
        src_x = bool(op & 0x08)
        reads = set() if code == 0xB0 else {insn.dst}
        if src_x and code not in (0x80, 0xD0):
            reads.add(insn.src)
        return reads, {insn.dst}
    if cls == 0x01:  # LDX
        return {insn.src}, {insn.dst}
    if cls == 0x03:  # STX
        return {insn.src, insn.dst}, set()
    if cls == 0x02:  # ST
        return {insn.dst}, set()
    if cls == 0x00:  # LD_IMM64 / legacy
        return set(), {insn.dst}
    code = op & 0xF0
    if code == 0x90:  # exit
        return {0}, set()
    if code == 0x80:  # call: a helper reads its arguments only
        nargs = 5
        if insn.src == 0:
            from .transfer import _helpers
            helper = _helpers().get(insn.imm)
            if helper is not None:
                nargs = len(helper.proto.args)
        return set(range(1, nargs + 1)), {0, 1, 2, 3, 4, 5}
    if code == 0x00:  # ja
        return set(), set()
    reads = {insn.dst}
    if op & 0x08:
        reads.add(insn.src)
    return reads, set()


def live_regs_table(program) -> str | None:
    """The level-2 ``Live regs before insn:`` table (None with calls)."""
    insns = program.instructions
    n = len(insns)
    succ: list[list[int]] = []
    for pc, insn in enumerate(insns):
        cls, code = insn.opcode & 0x07, insn.opcode & 0xF0
        if insn.opcode == 0x85 or insn.opcode == 0x8D:
            if insn.src != 0 or insn.opcode == 0x8D:
                return None
        if insn.opcode == 0x18:
            succ.append([pc + 2])
            continue
        if cls in (0x05, 0x06):
            if code == 0x90:
                succ.append([])
            elif code == 0x00:
                succ.append([pc + 1 + (insn.imm if cls == 0x06 else insn.off)])
            elif code == 0x80:
                succ.append([pc + 1])
            else:
                succ.append([pc + 1, pc + 1 + insn.off])
        else:
            succ.append([pc + 1])
    live_in = [0] * n
    changed = True
    while changed:
        changed = False
        for pc in range(n - 1, -1, -1):
            if pc > 0 and insns[pc - 1].opcode == 0x18:
                continue
            out = 0
            for s in succ[pc]:
                if 0 <= s < n:
                    out |= live_in[s]
            reads, writes = _used_regs(insns[pc])
            mask = out
            for w in writes:
                mask &= ~(1 << w)
            for r in reads:
                mask |= 1 << r
            mask &= ~(1 << BPF_REG_FP)
            if mask != live_in[pc]:
                live_in[pc] = mask
                changed = True
    from ebpfvm.asm.disassembler import format_instruction_kernel_log_line
    lines = ["func#0 @0", "Live regs before insn:"]
    for pc in range(n):
        if pc > 0 and insns[pc - 1].opcode == 0x18:
            continue
        marks = "".join(str(r) if live_in[pc] >> r & 1 else "." for r in range(10))
        text = format_instruction_kernel_log_line(program, pc).split(": ", 1)[1]
        lines.append(f"{pc:7d}: {marks} {text}")
    return "\n".join(lines) + "\n"


class LogBuilder:
    """Accumulates the log as ``do_check`` writes it."""

    def __init__(self, program, level: int, maps=None) -> None:
        from ebpfvm.asm.disassembler import format_instruction_kernel_log_line
        self._fmt = format_instruction_kernel_log_line
        self.program = program
        self.level = level
        self.maps = maps
        self.buf: list[str] = []
        self.marks: dict[int, tuple[int, int]] = {}   # id(pushed state) -> (branch pc, log position)
        self._pending: tuple[int, list[Reg], dict] | None = None
        self.started = False
        self.heads: dict[int, str] = {}

    def text(self) -> str:
        return "".join(self.buf)

    def insn(self, pc: int, state: State) -> None:
        if not self.started:
            self.buf.append(f"0: {format_state(state, self.maps)}\n")
            self.started = True
        self.buf.append(self._fmt(self.program, pc) + "\n")
        frame = state.frame
        self._pending = (pc, list(frame.regs), dict(frame.stack))

    def after(self, pc: int, successors: list) -> None:
        pending, self._pending = self._pending, None
        if not successors or pending is None:
            return
        insn = self.program.instructions[pc]
        if (insn.opcode & 0x07) in (0x05, 0x06) and (insn.opcode & 0xF0) not in (0x00, 0x80, 0x90) \
                and len(successors) == 1:
            return  # known branch outcome: the kernel prints differently (not reproduced)
        state = successors[0][1]
        _, old_regs, old_stack = pending
        reads, writes = _used_regs(insn)
        regs = {i for i in reads | writes | {insn.dst}
                if i < len(state.frame.regs)} if insn.opcode not in (0x05, 0x06) else set()
        if (insn.opcode & 0x07) in (0x04, 0x07) and not insn.opcode & 0x08:
            regs = {insn.dst}
        slots = {i for i, s in state.frame.stack.items() if old_stack.get(i) is not s}
        if (insn.opcode & 0x07) == 0x01:  # a load from the stack scratches the slot read
            base = old_regs[insn.src]
            if base.type is RegType.PTR_TO_STACK and base.var.is_const():
                slots.add((-(base.off + base.var.value + insn.off) - 1) // 8)
        text = format_state(state, self.maps, regs=regs, slots=slots)
        if not text:
            return
        line = self.buf.pop()[:-1]
        width = -(-max(len(line) + 1, BPF_LOG_MIN_ALIGNMENT) // BPF_LOG_ALIGNMENT) * BPF_LOG_ALIGNMENT \
            - (len(line) + 1) - 1
        self.buf.append(line + " " * width + "; " + text + "\n")

    def pushed(self, branch_pc: int, state: State) -> None:
        self.marks[id(state)] = (branch_pc, len(self.buf))
        self.heads[id(state)] = self._fmt(self.program, branch_pc)

    def popped(self, pc: int, state: State) -> None:
        mark = self.marks.pop(id(state), None)
        head = self.heads.pop(id(state), None)
        if mark is None:
            return
        branch_pc, pos = mark
        full = format_state(state, self.maps)
        if self.level >= 2:
            self.buf.append(f"\nfrom {branch_pc} to {pc}: {full}\n{pc}: {full}\n")
        else:
            del self.buf[pos:]
            self.buf.pop()
            self.buf.append(f"{head} {pc}: {full}\n")

    def error_lines(self, error_text: str, pc: int | None, state: State | None) -> str:
        """The error, with the line the kernel writes before some messages."""
        m = re.fullmatch(r"R(\d+) offset is outside of the packet", error_text)
        if m and pc is not None and state is not None:
            regno = int(m.group(1))
            insn = self.program.instructions[pc]
            reg = state.regs[regno]
            size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[insn.opcode & 0x18]
            off = insn.off + reg.off
            return (f"invalid access to packet, off={off} size={size}, "
                    f"R{regno}(id={reg.id},off={off},r={reg.range})\n{error_text}")
        return error_text

    def finish(self, error_text: str | None, time_us: int, stack_depths: list[int], stats) -> str:
        head = ""
        if self.level >= 2:
            head = live_regs_table(self.program) or ""
        body = self.text() if (self.level >= 2 or error_text is not None) else ""
        tail = []
        if error_text is not None:
            tail.append(error_text)
        tail.append(f"verification time {time_us} usec")
        tail.append("stack depth " + "+".join(str(d) for d in stack_depths))
        tail.append(stats_line(stats))
        return head + body + "\n".join(tail) + "\n"


# Rejected by check_subprogs / check_cfg, which run after level 2 lists the subprograms.
_AFTER_SUBPROG_LISTING = re.compile(r"(unreachable insn|back-edge from insn|jump out of range|"
                                    r"infinite loop detected|last insn is not an exit or jmp)")


def structural_log(program, error_text: str, level: int, time_us: int) -> str:
    """The log of a program rejected before any path is explored."""
    head = ""
    if level >= 2 and _AFTER_SUBPROG_LISTING.match(error_text):
        insns = program.instructions
        starts = sorted({0} | {pc + 1 + insn.imm for pc, insn in enumerate(insns)
                               if insn.opcode == 0x85 and insn.src == 1})
        head = "".join(f"func#{i} @{start}\n" for i, start in enumerate(starts))
    return (f"{head}{error_text}\nverification time {time_us} usec\nstack depth 0\n"
            "processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n")
