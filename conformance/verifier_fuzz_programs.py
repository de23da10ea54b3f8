"""Hypothesis strategies for programs that exercise the verifier's abstract interpretation.

Unlike ``strategies.kernel_safe_programs`` (programs the kernel accepts by
construction, for comparing execution), these are meant to be *judged*: each
is structurally well formed (it assembles, its jumps land on instructions,
every path ends in ``exit``) and then walks close to the edges of what the
verifier proves, so that the kernel accepts some and rejects others for
reasons of state: pointer arithmetic on the stack, the context, packets and
map values; null checks (sometimes left out); packet range checks (sometimes
one byte short); spills and fills of pointers and scalars (sometimes partial
or misaligned); bounded loops; bpf-to-bpf calls that pass stack pointers and
scalars around; helper calls with map arguments; ALU on bounded scalars used
as offsets.  Constants are drawn near the limits (stack size, value size,
checked packet range) so that both sides of each limit come up often.

A program is a ``FuzzProgram``: assembler text, the program type and the maps
it refers to by index (``lddw %r1, map_fd N``), which is also what a
``.case`` file of the verdict corpus holds.

Never generated: an AND on a scalar inside a loop body.  The 6.18 kernel on
this project's test machine Oopses (killing the loading process) when it
verifies a scalar in [-1, 0] AND-ed with a constant over and over in a loop
(the CRC idiom ``poly & -(crc & 1)``); ``and_in_loop`` checks every program
for the pattern before it reaches the kernel, as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

from ebpfvm.isa import AluOp, InsnClass

Draw = Callable

PROG_TYPES = ("socket_filter", "sched_cls", "xdp")
# Context offsets (struct __sk_buff / struct xdp_md) of the fields the programs read.
_CTX_LEN = {"socket_filter": 0, "sched_cls": 0, "xdp": None}
_CTX_PACKET = {"sched_cls": (76, 80), "xdp": (0, 4)}  # data, data_end
_CTX_FIELD_LIMIT = {"socket_filter": 192, "sched_cls": 192, "xdp": 24}


@dataclass(frozen=True)
class FuzzMap:
    """A map the program refers to by its index: ``map_type`` is libbpf's name."""

    map_type: str
    key_size: int
    value_size: int
    max_entries: int

    def to_line(self) -> str:
        """The ``maps`` line of a ``.case`` file."""
        return (f"{self.map_type} key_size={self.key_size} value_size={self.value_size} "
                f"max_entries={self.max_entries}")


@dataclass(frozen=True)
class FuzzProgram:
    """One generated program: assembler text, program type, maps (by index) and
    the fragment kinds it was built from (for the tables)."""

    asm: str
    prog_type: str
    maps: tuple[FuzzMap, ...]
    features: tuple[str, ...] = field(default=(), compare=False)


# --- building text -------------------------------------------------------------


class _Builder:
    """Accumulates assembler lines with fresh labels.  Registers r6 (ctx), r7/r8
    (packet start/end where the type has them) are set by the prologue and
    never written by fragments; r9 is the loop counter; r0-r5 are scratch."""

    def __init__(self, prog_type: str, value_sizes: tuple[int, int]) -> None:
        self.prog_type = prog_type
        self.value_sizes = value_sizes  # of map 0 and map 1
        self.lines: list[str] = []
        self.subprograms: list[list[str]] = []
        self.features: list[str] = []
        self._labels = 0
        self.in_loop = False

    def label(self, stem: str) -> str:
        self._labels += 1
        return f"{stem}{self._labels}"

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)

    @property
    def has_packet(self) -> bool:
        return self.prog_type in _CTX_PACKET


def _stack_offset(draw: Draw, size: int) -> int:
    """A stack offset for an access of ``size`` bytes: mostly valid and aligned,
    sometimes past either end or misaligned."""
    kind = draw(st.sampled_from(("aligned",) * 6 + ("edge", "misaligned")))
    if kind == "aligned":
        return -size * draw(st.integers(1, 64 // size))
    if kind == "edge":
        return draw(st.sampled_from((-512, -512 + size - 1, -520, 0, -size + 1, 8, -504)))
    return -draw(st.integers(1, 64))


def _near(draw: Draw, limit: int) -> int:
    """A value at, just below or just above ``limit`` (or well inside it)."""
    return draw(st.sampled_from((limit, limit - 1, limit // 2, 0) * 2 + (limit + 1, limit - 8, limit + 8)))


_SIZES = (("b", 1), ("h", 2), ("w", 4), ("dw", 8))


def _size(draw: Draw) -> tuple[str, int]:
    return draw(st.sampled_from(_SIZES))


# --- scalar sources and bounds ------------------------------------------------------


def _unknown_scalar(draw: Draw, b: _Builder, reg: int) -> None:
    """``reg`` = a scalar the verifier knows nothing (or little) about."""
    sources = ["prandom", "stack_fill", "ctx"]
    source = draw(st.sampled_from(sources))
    if source == "prandom":
        # helper calls clobber r1-r5: only used when reg is r0
        b.emit("call 7", *([f"mov %r{reg}, %r0"] if reg else []))  # bpf_get_prandom_u32
    elif source == "ctx" and _CTX_LEN[b.prog_type] is not None:
        b.emit(f"ldxw %r{reg}, [%r6+{_CTX_LEN[b.prog_type]}]")
    elif source == "ctx":
        b.emit(f"ldxw %r{reg}, [%r6+{draw(st.sampled_from((12, 16)))}]")  # ingress_ifindex, rx_queue_index
    else:
        # root may read stack it never wrote: an unknown scalar
        b.emit(f"ldxdw %r{reg}, [%r10-{draw(st.sampled_from((64, 72, 80)))}]")


def _bound_scalar(draw: Draw, b: _Builder, reg: int, limit: int, out: str) -> None:
    """Bound ``reg`` near [0, limit] by one of the idioms compilers emit; the
    bound is sometimes one off, sometimes only one-sided."""
    idiom = draw(st.sampled_from(("jgt", "jge", "mask", "rsh", "jlt_pair") * 3 + ("mod", "jsgt", "none")))
    k = _near(draw, limit)
    if idiom == "mask" and not b.in_loop:
        mask = draw(st.sampled_from((1, 3, 7, 15, 31, 63, 127, 255, 0xFFFF)))
        b.emit(f"and %r{reg}, {mask}")
    elif idiom == "rsh":
        b.emit(f"rsh %r{reg}, {draw(st.integers(24, 63))}")
    elif idiom == "mod":
        b.emit(f"mod %r{reg}, {max(1, k)}")
    elif idiom == "jgt":
        b.emit(f"jgt %r{reg}, {k}, {out}")
    elif idiom == "jge":
        b.emit(f"jge %r{reg}, {k}, {out}")
    elif idiom == "jsgt":  # signed only: a negative value still passes
        b.emit(f"jsgt %r{reg}, {k}, {out}")
    elif idiom == "jlt_pair":
        ok = b.label("ok")
        b.emit(f"jlt %r{reg}, {k}, {ok}", f"ja {out}", f"{ok}:")
    elif idiom == "none":
        pass
    else:  # "mask" inside a loop: fall back to a shift (never AND in a loop)
        b.emit(f"rsh %r{reg}, 60")


# --- fragments -------------------------------------------------------------------


def _frag_stack(draw: Draw, b: _Builder, out: str) -> None:
    """Stack store and load through r10 or a derived pointer, with spills of
    pointers and scalars and fills of other sizes."""
    b.features.append("stack")
    name, size = _size(draw)
    off = _stack_offset(draw, size)
    base = 10
    if draw(st.booleans()):
        base = draw(st.sampled_from((2, 3)))
        delta = draw(st.sampled_from((0, -8, -16, -64, -256) * 2 + (-512, 8, -4)))
        b.emit(f"mov %r{base}, %r10", f"add %r{base}, {delta}")
        off -= delta
    what = draw(st.sampled_from(("imm", "scalar", "ptr", "ptr")))
    if what == "ptr" and draw(st.integers(0, 3)):  # mostly whole, aligned spills
        name, size = "dw", 8
        off = -8 * draw(st.integers(1, 8)) - (0 if base == 10 else delta)
    sign = "+" if off >= 0 else "-"
    where = f"[%r{base}{sign}{abs(off)}]"
    if what == "imm":
        b.emit(f"st{name} {where}, {draw(st.sampled_from((0, 1, -1, 7)))}")
    elif what == "scalar":
        b.emit(f"mov %r4, {draw(st.integers(-3, 300))}", f"stx{name} {where}, %r4")
    else:
        src = draw(st.sampled_from((6, 10) + ((7,) if b.has_packet else ())))
        b.emit(f"stx{name} {where}, %r{src}")
    if draw(st.booleans()):
        lname = _size(draw)[0] if draw(st.booleans()) else name
        b.emit(f"ldx{lname} %r5, {where}")
        if what == "ptr" and draw(st.booleans()):
            # dereference the filled value: fine only if a whole pointer came back
            b.emit(f"ldxw %r0, [%r5+{draw(st.sampled_from((0, 0, 4)))}]")


def _frag_stack_var(draw: Draw, b: _Builder, out: str) -> None:
    """A stack pointer plus a bounded scalar: variable-offset stack access."""
    b.features.append("stack_var")
    _unknown_scalar(draw, b, 0)
    b.emit("mov %r4, %r0")
    _bound_scalar(draw, b, 4, draw(st.sampled_from((8, 16, 64, 511, 512))), out)
    b.emit("mov %r3, %r10", f"add %r3, {-draw(st.sampled_from((8, 16, 64, 512, 520)))}")
    if draw(st.booleans()):
        b.emit("add %r3, %r4")
    else:
        b.emit("add %r4, %r3", "mov %r3, %r4")  # scalar += pointer
    name = _size(draw)[0]
    if draw(st.booleans()):
        b.emit(f"st{name} [%r3+0], 1")
    b.emit(f"ldx{name} %r0, [%r3+0]")


def _frag_ctx(draw: Draw, b: _Builder, out: str) -> None:
    """Context loads and stores at offsets near the end of the context."""
    b.features.append("ctx")
    limit = _CTX_FIELD_LIMIT[b.prog_type]
    name, size = ("w", 4) if draw(st.integers(0, 2)) else _size(draw)
    off = draw(st.sampled_from((0, 4, 8, 16, 0, 4, 8, 16, limit - size, limit, 2, 1)))
    base = 6
    if draw(st.integers(0, 7)) == 0:
        b.emit("mov %r2, %r6", f"add %r2, {draw(st.sampled_from((4, 8)))}")
        base = 2
    if draw(st.integers(0, 7)) == 0:
        b.emit(f"stx{name} [%r{base}+{off}], %r9")
    else:
        b.emit(f"ldx{name} %r0, [%r{base}+{off}]")


def _frag_packet(draw: Draw, b: _Builder, out: str) -> None:
    """Packet access after a range check that may be one byte short, with a
    constant or a bounded variable offset."""
    if not b.has_packet:
        _frag_ctx(draw, b, out)
        return
    b.features.append("packet")
    name, size = _size(draw)
    checked = draw(st.sampled_from((size, 8, 14, 20, 34, 54) * 3 + (1, 2, 4)))
    b.emit("mov %r2, %r7")
    variable = draw(st.integers(0, 2)) == 0
    if variable:
        _unknown_scalar(draw, b, 0)
        b.emit("mov %r4, %r0")
        _bound_scalar(draw, b, 4, draw(st.sampled_from((16, 255, 0xFFFF))), out)
        b.emit("add %r2, %r4", "mov %r5, %r2")
    else:
        b.emit("mov %r5, %r7")
    b.emit(f"add %r2, {checked}")
    form = draw(st.sampled_from(("jgt", "jge", "jlt", "reversed", "none")))
    if form == "jgt":
        b.emit(f"jgt %r2, %r8, {out}")
    elif form == "jge":  # one byte stricter than needed: still fine
        b.emit(f"jge %r2, %r8, {out}")
    elif form == "jlt":
        ok = b.label("pok")
        b.emit(f"jlt %r2, %r8, {ok}", f"ja {out}", f"{ok}:")
    elif form == "reversed":
        b.emit(f"jlt %r8, %r2, {out}")
    off = draw(st.sampled_from((0, checked - size) * 2 + (checked - size + 1, checked, -1)))
    sign = "+" if off >= 0 else "-"
    if draw(st.integers(0, 3)) == 0:
        b.emit(f"st{name} [%r5{sign}{abs(off)}], 0")
    else:
        b.emit(f"ldx{name} %r0, [%r5{sign}{abs(off)}]")


def _frag_map(draw: Draw, b: _Builder, out: str) -> None:
    """bpf_map_lookup_elem with a key on the stack; the result null-checked (or
    not) and accessed at constant or variable offsets near the value size."""
    b.features.append("map")
    index = draw(st.sampled_from((0, 1)))
    key_size = (4, 8)[index]
    value_size = b.value_sizes[index]
    key_off = draw(st.sampled_from((-key_size, -16, -key_size + 4, 0)))
    if draw(st.integers(0, 5)):
        b.emit(f"st{'w' if key_size == 4 else 'dw'} [%r10{key_off:+d}], {draw(st.integers(0, 3))}")
    b.emit(f"lddw %r1, map_fd {index}", "mov %r2, %r10", f"add %r2, {key_off}")
    helper = draw(st.sampled_from((1, 1, 1, 1, 2, 3)))
    if helper == 2:  # bpf_map_update_elem(map, key, value, flags): value on the stack
        value_off = -draw(st.sampled_from((value_size, value_size + 8, value_size - 4, 64)))
        b.emit("mov %r3, %r10", f"add %r3, {value_off}", f"mov %r4, {draw(st.sampled_from((0, 0, 1, 4)))}",
               "call 2")
        return
    if helper == 3:
        b.emit("call 3")
        return
    b.emit("call 1")
    if draw(st.integers(0, 4)):
        b.emit(f"jeq %r0, 0, {out}")
    name, size = _size(draw)
    if draw(st.booleans()):
        off = draw(st.sampled_from((0, value_size - size) * 2 + (value_size - size + 1, value_size, -size)))
        sign = "+" if off >= 0 else "-"
        where = f"[%r0{sign}{abs(off)}]"
    else:
        b.emit("stxdw [%r10-32], %r0")  # helpers clobber r1-r5: keep the value pointer on the stack
        _unknown_scalar(draw, b, 0)
        b.emit("mov %r4, %r0", "ldxdw %r0, [%r10-32]")
        _bound_scalar(draw, b, 4, value_size - size, out)
        b.emit("add %r0, %r4")
        where = "[%r0+0]"
    if draw(st.booleans()):
        b.emit(f"st{name} {where}, 1")
    else:
        b.emit(f"ldx{name} %r3, {where}")
        if draw(st.integers(0, 3)) == 0:  # spill the value pointer and use the fill
            b.emit("stxdw [%r10-24], %r0", "ldxdw %r1, [%r10-24]", "ldxb %r3, [%r1+0]")


def _frag_alu(draw: Draw, b: _Builder, out: str) -> None:
    """ALU on bounded scalars (including pointer-scalar mixes) ending in a use
    as an offset."""
    b.features.append("alu")
    _unknown_scalar(draw, b, 0)
    b.emit("mov %r4, %r0")
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("add", "sub", "mul", "lsh", "rsh", "arsh", "xor", "or", "neg", "add32", "mov32")))
        if op == "neg":
            b.emit("neg %r4")
        elif op in ("lsh", "rsh", "arsh"):
            b.emit(f"{op} %r4, {draw(st.integers(0, 63))}")
        else:
            b.emit(f"{op} %r4, {draw(st.sampled_from((1, 7, 8, 255, -1, 0x7FFFFFFF, -8)))}")
    _bound_scalar(draw, b, 4, 64, out)
    target = draw(st.sampled_from(("stack", "ctx", "ptr_op")))
    if target == "stack":
        b.emit("mov %r3, %r10", "add %r3, -64", "add %r3, %r4", "ldxb %r0, [%r3+0]")
    elif target == "ctx":  # variable ctx offsets are always refused
        b.emit("mov %r3, %r6", "add %r3, %r4", "ldxw %r0, [%r3+0]")
    else:  # pointer arithmetic the verifier refuses (or turns into a scalar)
        op = draw(st.sampled_from(("sub", "mul", "and", "or", "add32")))
        if b.in_loop and op == "and":
            op = "or"
        b.emit("mov %r3, %r10", f"{op} %r3, %r4", "mov %r0, 0")


def _frag_loop(draw: Draw, b: _Builder, out: str) -> None:
    """A bounded loop (counting r9 down or up) whose body indexes the stack
    with the counter.  Its body has no AND (see the module docstring)."""
    b.features.append("loop")
    count = draw(st.sampled_from((1, 2, 3, 8, 16)))
    head = b.label("loop")
    step = draw(st.sampled_from((8, 8, 4, 16)))
    area = draw(st.sampled_from((64, 128, count * step, count * step - 8)))
    down = draw(st.booleans())
    b.emit(f"mov %r9, {count if down else 0}", f"{head}:")
    b.in_loop = True
    b.emit("mov %r2, %r9", f"mul %r2, {step}", "mov %r3, %r10", f"add %r3, -{max(8, area)}", "add %r3, %r2")
    if draw(st.booleans()):
        b.emit("stdw [%r3-8], 1" if down else "stdw [%r3+0], 1")
    else:
        b.emit("ldxdw %r0, [%r3-8]" if down else "ldxdw %r0, [%r3+0]")
    if draw(st.integers(0, 3)) == 0:
        _frag_stack(draw, b, out)
    b.in_loop = False
    if down:
        b.emit("sub %r9, 1", f"jne %r9, 0, {head}")
    else:
        b.emit("add %r9, 1", f"jlt %r9, {count}, {head}")


def _frag_call(draw: Draw, b: _Builder, out: str, bias_subprog_stack: bool = False) -> None:
    """A bpf-to-bpf call passing a stack pointer (r1) and a scalar (r2) that
    may differ between two paths into the call; the callee does pointer
    arithmetic on them or on its own frame pointer, and the caller then reads
    (and maybe dereferences) what the callee may have written into its frame."""
    b.features.append("call")
    name = f"sub{len(b.subprograms)}"
    ptr_off = -draw(st.sampled_from((8, 16, 32, 64)))
    if draw(st.integers(0, 4)):
        b.emit(f"stdw [%r10{ptr_off}], {draw(st.integers(0, 9))}")
    scalars = (-8, -16, 0, 8, 16, 4, -24)
    if draw(st.integers(0, 2)) == 0:  # the scalar argument depends on the path
        other = b.label("arg")
        b.emit("call 7", f"mov %r2, {draw(st.sampled_from(scalars))}", f"jgt %r0, 1000, {other}",
               f"mov %r2, {draw(st.sampled_from(scalars))}", f"{other}:")
    else:
        b.emit(f"mov %r2, {draw(st.sampled_from(scalars))}")
    b.emit("mov %r1, %r10", f"add %r1, {ptr_off}", f"call local {name}")
    returns_pointer = draw(st.integers(0, 7)) == 0
    reread = draw(st.sampled_from((None, ptr_off, -8, -16)))
    if reread is not None:  # what does the caller's frame hold now?
        b.emit(f"ldxdw %r4, [%r10{reread}]")
        if draw(st.integers(0, 2)) == 0:
            b.emit("ldxb %r0, [%r4+0]")  # a pointer only if the callee spilled one there
    if returns_pointer and draw(st.booleans()):
        b.emit("ldxb %r0, [%r0+0]")
    b.subprograms.append(_callee(draw, b, name, bias_subprog_stack, returns_pointer))


def _callee(draw: Draw, b: _Builder, name: str, bias: bool, returns_pointer: bool) -> list[str]:
    """The body of a subprogram called with r1 = a pointer into the caller's
    stack and r2 = a scalar.  With ``bias`` it always derives a pointer from
    a scalar plus its own r10 (``rX += r10``)."""
    kinds = ("const_plus_fp", "arg_plus_fp", "var_plus_fp", "nested") if bias else \
        ("caller_ptr", "caller_ptr_var", "const_plus_fp", "arg_plus_fp", "own_stack")
    kind = draw(st.sampled_from(kinds))
    size_name, size = ("dw", 8) if draw(st.integers(0, 2)) else _size(draw)
    soff = -draw(st.sampled_from((8, 16, 24, 32, size)))
    value = draw(st.sampled_from(("%r1", "%r1", "imm", "%r2")))  # r1: a pointer spill
    if value == "%r1" and draw(st.integers(0, 5)):
        size_name, size = "dw", 8  # mostly whole spills
    body = [f"{name}:"]
    if kind in ("const_plus_fp", "arg_plus_fp", "var_plus_fp", "nested"):
        b.features.append("subprog_scalar_plus_fp")
        if kind == "const_plus_fp":
            body += [f"mov %r3, {soff}"]
        elif kind == "arg_plus_fp":
            body += ["mov %r3, %r2", f"add %r3, {soff}"]
        else:  # a bounded unknown scalar: keep r1 and r2 across the helper call
            body += ["mov %r6, %r1", "mov %r7, %r2", "call 7", "mov %r3, %r0", "rsh %r3, 63", "lsh %r3, 3",
                     f"add %r3, {soff - 8}", "mov %r1, %r6", "mov %r2, %r7"]
        # scalar += stack pointer: mostly the callee's own r10, sometimes the caller's pointer in r1
        body.append(draw(st.sampled_from(("add %r3, %r10",) * 3 + ("add %r3, %r1",))))
        store = (f"stx{size_name} [%r3+0], {value}" if value != "imm" else f"st{size_name} [%r3+0], 7")
        body.append(store)
        if kind == "nested":  # hand the derived pointer to a deeper subprogram
            inner = f"{name}n"
            body += ["mov %r1, %r3", f"call local {inner}", f"ldx{size_name} %r4, [%r10{soff}]"]
            b.subprograms.append([f"{inner}:", "ldxdw %r0, [%r1+0]", "stdw [%r1+0], 1", "mov %r0, 0", "exit"])
        else:
            reader = draw(st.sampled_from(("%r10", "%r3")))
            body.append(f"ldx{size_name} %r4, [{reader}{soff:+d}]" if reader == "%r10"
                        else f"ldx{size_name} %r4, [%r3+0]")
        if value == "%r1" and draw(st.booleans()):
            body.append("ldxb %r0, [%r4+0]")  # a pointer only if r1 was spilled whole
    elif kind == "caller_ptr":  # the caller's stack through r1 plus r2
        body += ["add %r1, %r2", f"st{size_name} [%r1+0], 5", f"ldx{size_name} %r0, [%r1+0]"]
    elif kind == "caller_ptr_var":  # scalar += the caller's stack pointer
        body += ["mov %r3, %r2", "add %r3, %r1", f"ldx{size_name} %r0, [%r3+0]"]
    else:  # spill to its own stack through r10
        body += [f"stx{size_name} [%r10{soff}], %r1", f"ldx{size_name} %r4, [%r10{soff}]", "ldxb %r0, [%r4+0]"]
    if returns_pointer:  # the caller's pointer is fine to return; the callee's own is refused
        body.append(draw(st.sampled_from(("mov %r0, %r1", "mov %r0, %r1", "mov %r0, %r10"))))
    else:
        body.append("mov %r0, 0")
    body.append("exit")
    return body


_FRAGMENTS = {
    "stack": _frag_stack, "stack_var": _frag_stack_var, "ctx": _frag_ctx, "packet": _frag_packet,
    "map": _frag_map, "alu": _frag_alu, "loop": _frag_loop, "call": _frag_call,
}


@st.composite
def verifier_programs(draw: Draw, prog_types: tuple[str, ...] = PROG_TYPES,
                      bias_subprog_stack: bool = False) -> FuzzProgram:
    """A program built from 1-4 fragments (see the module docstring).
    ``bias_subprog_stack`` makes every program call a subprogram that does
    stack pointer arithmetic with scalars."""
    prog_type = draw(st.sampled_from(prog_types))
    value_sizes = (draw(st.sampled_from((4, 8, 16, 24, 48))), 16)
    b = _Builder(prog_type, value_sizes)
    maps = (FuzzMap("array", 4, value_sizes[0], 4), FuzzMap("hash", 8, value_sizes[1], 16))
    out = "out"
    b.emit("mov %r6, %r1")
    if b.has_packet:
        data, data_end = _CTX_PACKET[prog_type]
        b.emit(f"ldxw %r7, [%r6+{data}]", f"ldxw %r8, [%r6+{data_end}]")
    b.emit("mov %r9, 0")
    names = sorted(_FRAGMENTS)
    kinds = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    if bias_subprog_stack:
        kinds.insert(draw(st.integers(0, len(kinds))), "call")
    for kind in kinds:
        if kind == "call":
            _frag_call(draw, b, out, bias_subprog_stack)
        else:
            _FRAGMENTS[kind](draw, b, out)
    b.emit(f"{out}:", "mov %r0, 0", "exit")
    lines = list(b.lines)
    for body in b.subprograms:
        lines.extend(body)
    return FuzzProgram("\n".join(lines) + "\n", prog_type, maps, tuple(dict.fromkeys(b.features)))


# --- the guard ---------------------------------------------------------------------


def and_in_loop(instructions) -> int | None:
    """The index of an AND (ALU or ALU64, any source) inside a loop, counting
    every slot from a backward jump's target to the jump and every slot of the
    subprograms called from there, or None.  Programs with one are never
    loaded into the kernel (see the module docstring)."""
    insns = list(instructions)

    def is_and(insn) -> bool:
        return insn.opcode & 0x07 in (InsnClass.ALU, InsnClass.ALU64) and insn.opcode & 0xF0 == AluOp.AND

    starts = sorted({pc + 1 + i.imm for pc, i in enumerate(insns) if i.opcode == 0x85 and i.src == 1})

    def subprogram_slots(start: int) -> range:
        later = [t for t in starts if t > start]
        return range(start, later[0] if later else len(insns))

    for pc, insn in enumerate(insns):
        cls = insn.opcode & 0x07
        if cls not in (InsnClass.JMP, InsnClass.JMP32) or insn.opcode in (0x85, 0x95):
            continue
        target = pc + 1 + (insn.imm if insn.opcode == 0x06 else insn.off)
        if target > pc:
            continue
        seen: set[int] = set()
        pending = list(range(target, pc + 1))
        while pending:
            slot = pending.pop()
            if slot in seen or slot >= len(insns):
                continue
            seen.add(slot)
            if is_and(insns[slot]):
                return slot
            if insns[slot].opcode == 0x85 and insns[slot].src == 1:
                pending.extend(subprogram_slots(slot + 1 + insns[slot].imm))
    return None
