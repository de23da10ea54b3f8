"""A fast writer of function bodies with ``llvmlite.ir.IRBuilder``'s interface.

The lowering builds every function through the ``IRBuilder`` methods it needs
(``add``, ``icmp_unsigned``, ``gep``, ``load``, ``phi``, ``cbranch``...). With
``llvmlite.ir`` itself each IR instruction is a Python object with operand
lists, flags, metadata and a name registered in a scope, and
``str(module)`` walks them all again through ``str.format``: on a 1,000-
instruction program that was ~70% of the JIT's compile time (lowering 23 ms
and printing 15 ms against 14 ms for all of LLVM's work, trusted mode). Here
each instruction becomes its line of text at once: a value is just its type
and its reference (``%".17"``).

Only function bodies are written this way. Modules, function types,
declarations, prototypes and constants stay llvmlite.ir objects: a
``TextFunction`` is an ``ir.Function`` whose blocks are ``TextBlock``\\ s, so
``str(module)`` prints it with everything else. The text is byte for byte
what llvmlite.ir prints for the same builder calls -- the same names
(unnamed values and void instructions numbered ``.1``, ``.2``... in one
per-function sequence, explicit names deduplicated as ``name.1``), spacing
and order -- and ``tests/test_jit_irtext.py`` checks exactly that over
generated programs, the conformance suites and the runtime's example
objects, with llvmlite.ir as the reference (``lower_program(...,
builder="llvmlite")``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from llvmlite import ir

_CMP = {">": "gt", "<": "lt", "==": "eq", "!=": "ne", ">=": "ge", "<=": "le"}
_I1 = ir.IntType(1)
_SIMPLE_LABEL = re.compile(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*$")


def _ref(value: object) -> str:
    return value.get_reference()  # type: ignore[attr-defined]


def _typed(value: object) -> str:
    return f"{value.type} {value.get_reference()}"  # type: ignore[attr-defined]


def _quote(name: str) -> str:
    return name.replace("\\", "\\5c").replace('"', "\\22")


class TextValue:
    """An instruction's result: its type (an llvmlite.ir type) and reference."""

    __slots__ = ("type", "_reference")

    def __init__(self, type_: ir.Type, reference: str) -> None:
        self.type = type_
        self._reference = reference

    def get_reference(self) -> str:
        return self._reference


class TextPhi(TextValue):
    """A phi whose incoming edges may be added after later instructions: its
    line is rendered when the module is printed."""

    __slots__ = ("incomings",)

    def __init__(self, type_: ir.Type, reference: str) -> None:
        super().__init__(type_, reference)
        self.incomings: list[tuple[object, TextBlock]] = []

    def add_incoming(self, value: object, block: TextBlock) -> None:
        self.incomings.append((value, block))

    def __str__(self) -> str:
        incoming = ", ".join(f"[{_ref(v)}, {b.get_reference()}]" for v, b in self.incomings)
        return f"{self._reference} = phi  {self.type} {incoming}".rstrip()


class TextSwitch:
    """A switch terminator; cases are added after it is placed."""

    __slots__ = ("value", "default", "cases")

    def __init__(self, value: object, default: TextBlock) -> None:
        self.value = value
        self.default = default
        self.cases: list[tuple[object, TextBlock]] = []

    def add_case(self, value: object, block: TextBlock) -> None:
        if not isinstance(value, ir.Value):
            value = ir.Constant(self.value.type, value)  # type: ignore[attr-defined]
        self.cases.append((value, block))

    def __str__(self) -> str:
        cases = " ".join(f"{_typed(v)}, label {b.get_reference()}" for v, b in self.cases)
        return f"switch {_typed(self.value)}, label {self.default.get_reference()} [{cases}]"


class TextBlock:
    """A basic block: a label and its instruction lines (text, or the phi and
    switch objects that render themselves)."""

    __slots__ = ("function", "name", "_reference", "lines", "terminator")

    def __init__(self, function: TextFunction, name: str) -> None:
        self.function = function
        self.name = name
        self._reference = f'%"{_quote(name)}"'
        self.lines: list[object] = []
        self.terminator: object | None = None

    @property
    def is_terminated(self) -> bool:
        return self.terminator is not None

    def get_reference(self) -> str:
        return self._reference

    def descr(self, buf: list[str]) -> None:
        """What ``ir.Function.descr_body`` asks of each of its blocks."""
        label = self.name if _SIMPLE_LABEL.match(self.name) else f'"{_quote(self.name)}"'
        buf.append(f"{label}:\n")
        buf += [f"  {line}\n" for line in self.lines]


class TextFunction(ir.Function):
    """An ``ir.Function`` (prototype, arguments, linkage: llvmlite's) whose
    body is ``TextBlock``\\ s written by ``TextBuilder``."""

    def __init__(self, module: ir.Module, ftype: ir.FunctionType, name: str) -> None:
        super().__init__(module, ftype, name)
        # Unnamed values continue the scope's sequence (the arguments and the
        # return value took the first numbers).
        self.unnamed = self.scope._basenamemap[""]

    def append_basic_block(self, name: str = "") -> TextBlock:  # type: ignore[override]
        block = TextBlock(self, self.unique_name(name))
        self.blocks.append(block)
        return block

    def next_reference(self) -> str:
        self.unnamed += 1
        return f'%".{self.unnamed}"'

    def unique_name(self, name: str) -> str:
        if not name:
            self.unnamed += 1
            return f".{self.unnamed}"
        return self.scope.register(name, deduplicate=True)


def _binop(opname: str) -> Callable[..., TextValue]:
    """``IRBuilder.<op>(a, b)`` for the binary operation ``opname``."""
    def emit(self: TextBuilder, a, b, name: str = "") -> TextValue:
        return self._value(a.type, f"{opname} {a.type} {a.get_reference()}, {b.get_reference()}", name)
    return emit


def _icmp(prefix: str) -> Callable[..., TextValue]:
    """``icmp_signed`` (prefix ``s``) or ``icmp_unsigned`` (``u``)."""
    def emit(self: TextBuilder, cmpop: str, a, b, name: str = "") -> TextValue:
        op = _CMP[cmpop] if cmpop in ("==", "!=") else prefix + _CMP[cmpop]
        return self._value(_I1, f"icmp {op} {a.type} {a.get_reference()}, {b.get_reference()}", name)
    return emit


def _cast(opname: str) -> Callable[..., TextValue]:
    """``IRBuilder.trunc/zext/sext(value, typ)``."""
    def emit(self: TextBuilder, value, typ: ir.Type, name: str = "") -> TextValue:
        return self._value(typ, f"{opname} {_typed(value)} to {typ}", name)
    return emit


def builder_for(block: ir.Block | TextBlock) -> ir.IRBuilder | TextBuilder:
    """The builder that writes ``block``: a ``TextBuilder`` for a
    ``TextFunction``'s block, llvmlite's own ``IRBuilder`` otherwise."""
    return TextBuilder(block) if isinstance(block, TextBlock) else ir.IRBuilder(block)


class TextBuilder:
    """The subset of ``ir.IRBuilder`` the lowering uses, appending text."""

    __slots__ = ("block", "_function", "_lines")

    def __init__(self, block: TextBlock) -> None:
        self.position_at_end(block)

    def position_at_end(self, block: TextBlock) -> None:
        self.block = block
        self._function = block.function
        self._lines = block.lines

    @contextmanager
    def goto_block(self, block: TextBlock) -> Iterator[None]:
        if block.is_terminated:
            raise ValueError(f"block {block.name} is terminated: nothing can be appended")
        old = self.block
        self.position_at_end(block)
        try:
            yield
        finally:
            self.position_at_end(old)

    # -- emission ------------------------------------------------------------------
    def _value(self, type_: ir.Type, text: str, name: str = "") -> TextValue:
        fn = self._function
        if name:
            reference = f'%"{_quote(fn.unique_name(name))}"'
        else:  # (next_reference, inlined: this runs for most instructions)
            fn.unnamed += 1
            reference = f'%".{fn.unnamed}"'
        self._lines.append(f"{reference} = {text}")
        return TextValue(type_, reference)

    def _void(self, line: object) -> None:
        self._function.unnamed += 1  # llvmlite names void instructions too
        self._lines.append(line)

    def _terminate(self, line: object) -> None:
        if self.block.is_terminated:
            raise ValueError(f"block {self.block.name} is already terminated")
        self._void(line)
        self.block.terminator = line

    add, sub, mul = _binop("add"), _binop("sub"), _binop("mul")
    udiv, sdiv, urem, srem = _binop("udiv"), _binop("sdiv"), _binop("urem"), _binop("srem")
    and_, or_, xor = _binop("and"), _binop("or"), _binop("xor")
    shl, lshr, ashr = _binop("shl"), _binop("lshr"), _binop("ashr")

    def not_(self, value, name=""):
        return self.xor(value, ir.Constant(value.type, -1), name)

    def neg(self, value, name=""):
        return self.sub(ir.Constant(value.type, 0), value, name)

    icmp_signed, icmp_unsigned = _icmp("s"), _icmp("u")

    def select(self, cond, a, b, name=""):
        return self._value(a.type, f"select  {_typed(cond)}, {_typed(a)}, {_typed(b)}", name)

    trunc, zext, sext = _cast("trunc"), _cast("zext"), _cast("sext")

    def load(self, ptr, name="", align=None, typ=None):
        tail = f", align {align}" if align is not None else ""
        return self._value(typ, f"load {typ}, {_typed(ptr)}{tail}", name)

    def store(self, value, ptr, align=None) -> None:
        tail = f", align {align}" if align is not None else ""
        self._void(f"store {_typed(value)}, {_typed(ptr)}{tail}")

    def gep(self, ptr, indices, inbounds=False, name="", source_etype=None):
        op = "getelementptr inbounds" if inbounds else "getelementptr"
        return self._value(ptr.type, f"{op} {source_etype}, {_typed(ptr)}, {', '.join(map(_typed, indices))}", name)

    def phi(self, typ, name=""):
        fn = self._function
        phi = TextPhi(typ, f'%"{_quote(fn.unique_name(name))}"' if name else fn.next_reference())
        self._lines.append(phi)
        return phi

    def call(self, fn, args, name=""):
        ret = fn.function_type.return_type
        text = f"call {ret} {fn.get_reference()}({', '.join(map(_typed, args))})"
        if isinstance(ret, ir.VoidType):
            self._void(text)
            return None
        return self._value(ret, text, name)

    def bswap(self, value, name=""):
        return self.call(self._function.module.declare_intrinsic("llvm.bswap", [value.type]), [value], name)

    def extract_value(self, agg, idx, name=""):
        return self._value(agg.type.elements[idx], f"extractvalue {_typed(agg)}, {idx}", name)

    def cmpxchg(self, ptr, cmp, val, ordering, failordering=None, name=""):
        result = ir.LiteralStructType([val.type, _I1])
        return self._value(result, f"cmpxchg {_typed(ptr)}, {_typed(cmp)}, {cmp.type} {val.get_reference()} "
                                   f"{ordering} {failordering or ordering}", name)

    def atomic_rmw(self, op, ptr, val, ordering, name=""):
        return self._value(val.type, f"atomicrmw {op} {_typed(ptr)}, {_typed(val)} {ordering}", name)

    # -- terminators ---------------------------------------------------------------
    def branch(self, target: TextBlock) -> None:
        self._terminate(f"br label {target.get_reference()}")

    def cbranch(self, cond, then: TextBlock, otherwise: TextBlock) -> None:
        self._terminate(f"br {_typed(cond)}, label {then.get_reference()}, label {otherwise.get_reference()}")

    def ret(self, value) -> None:
        self._terminate(f"ret {_typed(value)}")

    def switch(self, value, default: TextBlock) -> TextSwitch:
        switch = TextSwitch(value, default)
        self._terminate(switch)
        return switch
