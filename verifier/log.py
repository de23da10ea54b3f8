"""Kernel-format verifier logs (``log_level`` 1 and 2), as Linux 6.18 prints them.

Built only when ``log_level >= 1``: :func:`verifier.explore.explore` calls a
:class:`LogBuilder` at each processed instruction.  Matching the kernel exactly
(checked against the live kernel in ``tests/test_verifier_log.py`` and
``tests/test_verifier_log_links.py``):

* the initial ``0: R1=ctx() R10=fp0`` line; each instruction as
  ``N: (op) text`` followed, after the kernel's column alignment, by
  ``; R..=..`` for the registers the instruction read or wrote and the stack
  slots it changed (a branch, decided or not, prints its registers only);
  ``exit`` prints no state; a callee's state starts ``frameN:``, ends
  `` refs=..`` while references are held and `` cb`` in a callback;
* BTF line info: ``; <source> @ <file>:<line>`` before the first
  instruction of each new source line;
* bpf-to-bpf calls: ``caller:``/``callee:`` dumps and the callee's entry
  state; on return ``returning from callee:``/``to caller at N:`` (and at
  level 2 ``from EXIT to N:``);
* at level 2, ``from A to B: <state>`` / ``B: <state>`` when a branch is
  popped; at level 1 only the failing path survives (the kernel rewinds the
  log to the branch instruction and continues it with `` B: <state>``);
* the ``Live regs before insn:`` table (level 2, ``verifier.liveness``);
* the error line, ``verification time N usec``, ``stack depth N`` and the
  statistics line;
* ``safe`` pruning notes at level 2 (``N: safe``, ``from A to B: safe``), and
  the instruction state left out before a pruned instruction;
* global functions: ``Func#3 ('clamp') is global and assumed valid.`` at the
  call, ``Validating clamp() func#3...`` and ``Func#3 ('clamp') is safe for
  any args that match its prototype`` around its own verification (level 1
  resets the log after each function verified, as the kernel does).

Not reproduced: ``mark_precise`` backtracking lines, stack-liveness debug
lines (``(0) frame 0 insn 3 +written -8``), and the alignment of a state
printed on a line of its own after such lines.
"""

from __future__ import annotations

import bisect
import os
import re

from .state import Reg, RegType, Slot, State

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


# base_type PTR_TO_MEM: the region's size prints as ``sz=``.
_MEM_TYPES = frozenset({RegType.PTR_TO_MEM, RegType.PTR_TO_MEM_OR_NULL, RegType.PTR_TO_RINGBUF_MEM,
                        RegType.PTR_TO_RINGBUF_MEM_OR_NULL})


def format_reg(reg: Reg, maps=None, frameno: int | None = None) -> str:
    """A register as 6.18's ``print_verifier_state`` writes it; a stack
    pointer into another frame than ``frameno`` (the one printed) names its
    frame: ``fp[0]-24``."""
    t = reg.type
    if t is RegType.SCALAR:
        return reg.var.format(id=reg.id, delta=reg.delta)
    var_zero = reg.var.is_const() and reg.var.value == 0
    if t is RegType.PTR_TO_STACK and var_zero and not reg.id:
        other = f"[{reg.frameno}]" if frameno is not None and reg.frameno != frameno else ""
        return f"fp{other}{reg.off}"
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
        # AT_PKT_END / BEYOND_PKT_END (negative) print as the kernel's u64
        parts.append(f"r={reg.range}" if reg.range >= 0 else f"r={reg.range & (1 << 64) - 1:#x}")
    if t in _MEM_TYPES and reg.mem_size:
        parts.append(f"sz={reg.mem_size}")
    if not var_zero:
        inner = reg.var.format()
        if inner.startswith("scalar("):
            inner = inner[len("scalar("):-1]
        else:
            inner = f"imm={inner}"
        if inner:
            parts.append(inner)
    return f"{t.value}(" + ",".join(parts) + ")"


def _slot_text(slot, maps, frame=None) -> str | None:
    """A stack slot: its byte kinds, highest address first; a slot whose
    lowest byte holds a spill prints the kinds above the spill, then the
    spilled register (``????scalar(id=1,...)`` for a 4-byte spill)."""
    if all(k is Slot.INVALID for k in slot.kinds):
        return None
    frameno = None if frame is None else frame.frameno
    chars = [{Slot.INVALID: "?", Slot.MISC: "m", Slot.ZERO: "0", Slot.SPILL: "r"}[k] for k in reversed(slot.kinds)]
    if slot.spilled is not None and slot.kinds[0] is Slot.SPILL:
        above = "".join(chars[:chars.index("r")])
        return above + format_reg(slot.spilled, maps, frameno)
    return "".join(chars)


def format_state(state: State, maps=None, regs=None, slots=None, frame=None) -> str:
    """``R0=.. R1=ctx() R10=fp0 fp-8=mmmmmmmm``: every initialised register
    and stack slot of the innermost frame (or ``frame``), or only
    ``regs``/``slots`` when given; ``frameN: `` first in a callee's frame,
    `` refs=..`` last while references are held (``print_verifier_state``)."""
    frame = state.frame if frame is None else frame
    out = [f"frame{frame.frameno}:"] if frame.frameno else []
    for i, reg in enumerate(frame.regs):
        if reg.type is RegType.NOT_INIT or (regs is not None and i not in regs):
            continue
        out.append(f"R{i}={format_reg(reg, maps, frame.frameno)}")
    for index in sorted(frame.stack):
        if slots is not None and index not in slots:
            continue
        text = _slot_text(frame.stack[index], maps, frame)
        if text is not None:
            out.append(f"fp{-8 * (index + 1)}={text}")
    if state.refs:
        out.append("refs=" + ",".join(str(r) for r in state.refs))
    if frame.in_callback:
        out.append("cb")
    return " ".join(out)


def stats_line(stats) -> str:
    return (f"processed {stats.processed_insns} insns (limit 1000000) max_states_per_insn "
            f"{stats.max_states_per_insn} total_states {stats.total_states} peak_states "
            f"{stats.peak_states} mark_read {stats.mark_read}")


def _used_regs(insn) -> tuple[set[int], set[int]]:
    """(read, written) registers of one instruction: what its log annotation shows."""
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
        if op & 0xE0 == 0xC0:  # atomics: cmpxchg compares and loads r0, the fetch forms load src
            imm = insn.imm & 0xFFFF_FFFF
            if imm == 0xF1:
                return {0, insn.src, insn.dst}, {0}
            if imm & 0x01:
                return {insn.src, insn.dst}, {insn.src}
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


def live_regs_table(program) -> str:
    """The level-2 subprogram list and ``Live regs before insn:`` table
    (``verifier.liveness``), as ``compute_live_registers`` prints it."""
    from ebpfvm.asm.disassembler import format_instruction_kernel_log_line

    from .api import _prog_type
    from .cfg import ControlFlowGraph, subprogram_starts
    from .liveness import format_mask, helper_arg_counter, live_regs_before
    insns = program.instructions
    live = live_regs_before(program, helper_arg_counter(_prog_type(getattr(program, "prog_type", None))))
    # instructions in a loop carry their strongly connected component's number
    sccs = ControlFlowGraph(program).strongly_connected_components()
    scc_of = {pc: number for number, members in enumerate(sccs, 1) for pc in members}
    lines = [f"func#{i} @{start}" for i, start in enumerate(subprogram_starts(program))]
    lines.append("Live regs before insn:")
    for pc in range(len(insns)):
        if pc > 0 and insns[pc - 1].opcode == 0x18:
            continue
        text = format_instruction_kernel_log_line(program, pc).split(": ", 1)[1]
        scc = f"{scc_of[pc]:3d}" if pc in scc_of else "   "
        lines.append(f"{scc} {pc:3d}: {format_mask(live[pc])} {text}")
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
        self._frame = None  # the frame the pending instruction ran in
        self._linfo = sorted(getattr(program, "line_info", ()) or (), key=lambda li: li.insn)
        self._linfo_starts = [li.insn for li in self._linfo]
        self._prev_linfo = None
        self._entered = False  # a bpf-to-bpf call just entered its callee
        # Level 2 writes the ``; R..`` state of an instruction and the ``from A
        # to B:`` state of a popped branch only when the next instruction is
        # processed, so a pruned one shows neither (the kernel checks for a
        # prune first): (line index, text) and (header, state lines) wait here.
        self._annotation: tuple[int, str] | None = None
        self._header: tuple[str, str] | None = None
        self.kept = 0  # level 1: lines a verified function left after the reset (printed even on success)

    def text(self) -> str:
        return "".join(self.buf)

    def _flush(self) -> None:
        if self._annotation is not None:
            index, text = self._annotation
            self.buf[index] = text
            self._annotation = None
        if self._header is not None:
            self.buf.append(self._header[1])
            self._header = None

    def pruned(self, pc: int) -> None:
        """``is_state_visited`` found ``pc`` covered: ``from A to B: safe``
        right after a pop, ``B: safe`` mid-path (level 2; level 1 rewinds
        finished paths anyway)."""
        if self.level < 2:
            return
        self._annotation = None
        header, self._header = self._header, None
        self.buf.append(f"\n{header[0]}: safe\n" if header is not None else f"{pc}: safe\n")

    def insn(self, pc: int, state: State) -> None:
        self._flush()
        if not self.started:
            self.buf.append(f"{pc}: {format_state(state, self.maps)}\n")
            self.started = True
        if self._entered:  # the callee's first instruction: its whole entry state first
            self.buf.append(f"{pc}: {format_state(state, self.maps)}\n")
            self._entered = False
        self._source_line(pc)
        self.buf.append(self._fmt(self.program, pc) + "\n")
        frame = state.frame
        self._frame = (frame, len(state.frames))
        self._pending = (pc, list(frame.regs), dict(frame.stack))

    def _source_line(self, pc: int) -> None:
        """``verbose_linfo``: ``; <source line> @ <file>:<line>`` before the
        first instruction processed under a different line_info record."""
        i = bisect.bisect_right(self._linfo_starts, pc) - 1
        if i < 0 or self._linfo[i] is self._prev_linfo:
            return
        prev, li = self._prev_linfo, self._linfo[i]
        self._prev_linfo = li
        if prev is not None and (prev.file, prev.line) == (li.file, li.line):
            return  # another column of the line just printed: the kernel prints a line once
        self.buf.append(f"; {li.text.lstrip()} @ {os.path.basename(li.file)}:{li.line}\n")

    def note(self, line: str) -> None:
        """A line of the kernel's outside the instruction trace."""
        self._flush()
        self.buf.append(line + "\n")

    def function_start(self, line: str) -> None:
        """A global function's verification begins (``Validating f() func#N...``)."""
        self.note(line)
        self.started = False

    def function_verified(self, line: str | None) -> None:
        """A function verified: at level 1 the kernel resets the log (keeping
        what earlier functions left), then prints ``line``."""
        self._flush()
        if self.level < 2:
            self.buf.clear()  # (bpf_vlog_reset to 0: earlier functions' lines too)
            self.marks.clear()
            self.heads.clear()
        if line is not None:
            self.buf.append(line + "\n")
        self.kept = len(self.buf)

    def after(self, pc: int, successors: list, notes: list[str] = ()) -> None:  # type: ignore[assignment]
        pending, self._pending = self._pending, None
        if not successors or pending is None:
            return
        insn = self.program.instructions[pc]
        state = successors[0][1]
        _, old_regs, old_stack = pending
        old_frame, depth = self._frame
        if insn.opcode == 0x85 and insn.src == 1 and len(state.frames) > depth:
            # the caller's r0-r5 are clobbered by the call (clear_caller_saved_regs)
            caller = format_state(state, self.maps, regs=range(6, 11), frame=state.frames[-2])
            self.buf.append(f"caller:\n {caller}\n"
                            f"callee:\n {format_state(state, self.maps)}\n")
            self._entered = True
            return
        if insn.opcode == 0x95:  # prepare_func_exit: back in the caller
            ret = successors[0][0]
            caller = format_state(state, self.maps)
            self.buf.append(f"returning from callee:\n {format_state(state, self.maps, frame=old_frame)}\n"
                            f"to caller at {ret}:\n {caller}\n")
            if self.level >= 2:
                self._header = (f"from {pc} to {ret}", f"\nfrom {pc} to {ret}: {caller}\n")
            return
        reads, writes = _used_regs(insn)
        regs = {i for i in reads | writes | {insn.dst}
                if i < len(state.frame.regs)} if insn.opcode not in (0x05, 0x06) else set()
        if (insn.opcode & 0x07) in (0x04, 0x07) and not insn.opcode & 0x08:
            regs = {insn.dst}
        slots = {i for i, s in state.frame.stack.items() if old_stack.get(i) is not s}
        if (insn.opcode & 0x07) in (0x05, 0x06) and insn.opcode & 0xF0 != 0x80:
            slots = set()  # a branch scratches only its registers, not slots it refined by id
            # (a helper call scratches the stack bytes it wrote)
        if (insn.opcode & 0x07) == 0x01:  # a load from the stack scratches the (lowest) slot it reads
            base = old_regs[insn.src]
            if base.type is RegType.PTR_TO_STACK:
                slots.add((-(base.off + base.var.smin + insn.off) - 1) // 8)
        text = format_state(state, self.maps, regs=regs, slots=slots)
        if notes:  # lines the instruction printed (a global call): the state goes on a line of its own
            self._flush()
            self.buf.extend(note + "\n" for note in notes)
            self.buf.append(f"{successors[0][0]}: {text}\n")
            return
        if not text and insn.opcode != 0x85:
            return  # nothing scratched; a helper call always scratches r0-r5, even all uninitialised
        line = self.buf[-1][:-1]
        # ``vlog_alignment``: the ';' two columns before a multiple of 8 (at
        # least column 38) with at least three spaces before it
        width = -(-max(len(line) + 5, BPF_LOG_MIN_ALIGNMENT) // BPF_LOG_ALIGNMENT) * BPF_LOG_ALIGNMENT \
            - 2 - len(line)
        annotated = line + " " * width + ";" + (" " + text if text else "") + "\n"
        if self.level >= 2:
            self._annotation = (len(self.buf) - 1, annotated)
        else:
            self.buf[-1] = annotated

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
            self._flush()
            self._header = (f"from {branch_pc} to {pc}", f"\nfrom {branch_pc} to {pc}: {full}\n{pc}: {full}\n")
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
        self._flush()
        head = ""
        if self.level >= 2:
            head = live_regs_table(self.program)
        body = self.text() if (self.level >= 2 or error_text is not None or self.kept) else ""
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
