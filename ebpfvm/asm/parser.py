"""Turning one tokenized source line into labels and an instruction statement.

Jump and call targets that name labels stay unresolved here; the assembler
resolves them once every label's slot index is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import AssemblyError
from ..helpers.ids import helper_id
from ..isa import LddwSource, to_s32
from ..isa.forms import MAX_REGISTER
from ..isa.load_store import LDDW_OPCODE
from .lexer import Token, TokenKind, tokenize
from .mnemonics import LDDW_KEYWORDS, MAX_MNEMONIC_WORDS, Entry, Operand, entries_named, is_mnemonic

OFF_RANGE = (-0x8000, 0x7FFF)
IMM_RANGE = (-0x8000_0000, 0x7FFF_FFFF)
U32_MAX = 0xFFFF_FFFF
IMM64_RANGE = (-(1 << 63), (1 << 64) - 1)

FIELD_BITS = {"off": 16, "imm": 32}
FIELD_RANGE = {"off": OFF_RANGE, "imm": IMM_RANGE}


@dataclass(frozen=True)
class TargetRef:
    """A jump or call target: a label to resolve, or an already known offset."""

    field: str  # "off" or "imm"
    label: str | None
    offset: int
    column: int


@dataclass
class Statement:
    entry: Entry
    line: int
    column: int
    fields: dict[str, int]  # dst, src, off, imm; lddw also has "tail"
    target: TargetRef | None = None

    @property
    def size(self) -> int:
        return 2 if self.entry.opcode == LDDW_OPCODE else 1


@dataclass
class ParsedLine:
    labels: list[tuple[str, int]] = field(default_factory=list)  # (name, column)
    statement: Statement | None = None


class _Line:
    """Error construction for one source line."""

    def __init__(self, number: int, text: str, source: str | None) -> None:
        self.number = number
        self.text = text
        self.source = source

    def error(self, message: str, column: int) -> AssemblyError:
        return AssemblyError(message, self.number, column, self.source)

    def end_column(self) -> int:
        return len(self.text.rstrip()) + 1


def parse_line(text: str, number: int, source: str | None = None) -> ParsedLine:
    line = _Line(number, text, source)
    tokens = tokenize(text, number, source)
    parsed = ParsedLine()
    pos = 0
    while pos + 1 < len(tokens) and tokens[pos].kind is TokenKind.IDENT and tokens[pos + 1].kind is TokenKind.COLON:
        parsed.labels.append((tokens[pos].text, tokens[pos].column))
        pos += 2
    if pos < len(tokens):
        parsed.statement = _statement(tokens[pos:], line)
    return parsed


def _statement(tokens: Sequence[Token], line: _Line) -> Statement:
    head = tokens[0]
    if head.kind is not TokenKind.IDENT:
        raise line.error(f"expected an instruction or a label, found {head.text!r}", head.column)
    name, words = _mnemonic(tokens, line)
    groups = _split_operands(tokens[words:], line)
    entry = _choose_entry(name, entries_named(name), groups, head, line)
    fields = {"dst": 0, "src": 0, "off": 0, "imm": 0, **dict(entry.fixed)}
    statement = Statement(entry, line.number, head.column, fields)
    for operand, group in zip(entry.operands, groups):
        _PARSERS[operand](group, statement, line)
    if entry.operands and entry.operands[-1] is Operand.LDDW:
        _lddw_tail(groups[len(entry.operands):], statement, line)
    return statement


def _mnemonic(tokens: Sequence[Token], line: _Line) -> tuple[str, int]:
    """The longest run of leading words that spells a mnemonic, and its length."""
    words: list[str] = []
    for tok in tokens[:MAX_MNEMONIC_WORDS]:
        if tok.kind is not TokenKind.IDENT:
            break
        words.append(tok.text.lower())
    for count in range(len(words), 0, -1):
        name = " ".join(words[:count])
        if is_mnemonic(name):
            return name, count
    head = tokens[0]
    if words[0] == "lock":
        if len(tokens) == 1:
            raise line.error("incomplete atomic instruction: expected an operation after 'lock' "
                             "(add, or, and, xor, fetch add, ..., xchg, cmpxchg)", head.column)
        raise line.error(f"unknown atomic operation {' '.join(t.text for t in tokens[1:3] if t.kind is TokenKind.IDENT)!r} "
                         "after 'lock'", tokens[1].column)
    raise line.error(f"unknown mnemonic {head.text!r}", head.column)


def _split_operands(tokens: Sequence[Token], line: _Line) -> list[list[Token]]:
    if not tokens:
        return []
    groups: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.kind is TokenKind.COMMA:
            if not groups[-1]:
                raise line.error("missing operand before ','", tok.column)
            groups.append([])
        else:
            groups[-1].append(tok)
    if not groups[-1]:
        raise line.error("missing operand after ','", line.end_column())
    return groups


# -- choosing among same-named entries ----------------------------------------

_ACCEPTS: dict[Operand, frozenset[TokenKind]] = {
    Operand.DST: frozenset({TokenKind.REG}),
    Operand.SRC: frozenset({TokenKind.REG}),
    Operand.IMM: frozenset({TokenKind.NUMBER}),
    Operand.HELPER: frozenset({TokenKind.NUMBER, TokenKind.IDENT}),
    Operand.DST_MEM: frozenset({TokenKind.LBRACKET}),
    Operand.SRC_MEM: frozenset({TokenKind.LBRACKET}),
    Operand.OFF_TARGET: frozenset({TokenKind.NUMBER, TokenKind.IDENT}),
    Operand.IMM_TARGET: frozenset({TokenKind.NUMBER, TokenKind.IDENT}),
    Operand.LDDW: frozenset({TokenKind.NUMBER, TokenKind.IDENT}),
}

_DESCRIPTION: dict[Operand, str] = {
    Operand.DST: "a register",
    Operand.SRC: "a register",
    Operand.IMM: "an immediate",
    Operand.HELPER: "a helper id or name",
    Operand.DST_MEM: "a memory operand like [%r1+8]",
    Operand.SRC_MEM: "a memory operand like [%r1+8]",
    Operand.OFF_TARGET: "a label or an offset like +3",
    Operand.IMM_TARGET: "a label or an offset like +3",
    Operand.LDDW: "a 64-bit immediate or a pseudo source like 'map_fd 3'",
}


def _operand_counts(entry: Entry) -> tuple[int, ...]:
    n = len(entry.operands)
    # lddw's pseudo sources may carry the second slot's imm as an extra operand.
    return (n, n + 1) if entry.operands and entry.operands[-1] is Operand.LDDW else (n,)


def _choose_entry(name: str, candidates: list[Entry], groups: list[list[Token]], head: Token, line: _Line) -> Entry:
    counted = [e for e in candidates if len(groups) in _operand_counts(e)]
    if not counted:
        counts = sorted({c for e in candidates for c in _operand_counts(e)})
        expected = " or ".join(str(c) for c in counts)
        forms = "; ".join(dict.fromkeys(e.syntax for e in candidates))
        raise line.error(f"'{name}' takes {expected} operand{'s' if counts != [1] else ''} ({forms}), "
                         f"got {len(groups)}", head.column)
    alive = counted
    for index, group in enumerate(groups):
        still = [e for e in alive if index >= len(e.operands) or group[0].kind in _ACCEPTS[e.operands[index]]]
        if not still:
            wanted = " or ".join(dict.fromkeys(_DESCRIPTION[e.operands[index]] for e in alive))
            raise line.error(f"operand {index + 1} of '{name}' must be {wanted}, found {group[0].text!r}",
                             group[0].column)
        alive = still
    return alive[0]


# -- operand parsers -------------------------------------------------------------

def _single(group: list[Token], line: _Line) -> Token:
    if len(group) > 1:
        raise line.error(f"unexpected {group[1].text!r} in operand", group[1].column)
    return group[0]


def _register(tok: Token, line: _Line) -> int:
    if tok.value is None or tok.value > MAX_REGISTER:
        raise line.error(f"invalid register {tok.text!r} (registers are %r0..%r{MAX_REGISTER})", tok.column)
    return tok.value


def imm32(tok: Token, line: _Line) -> int:
    """A 32-bit immediate as stored (signed). Decimal is read as signed; hex as
    the 32-bit pattern, so 0xffffffff is -1 but 4294967295 is out of range
    (the conformance suite's negative tests require exactly this)."""
    value = tok.value
    assert value is not None
    if tok.hex and 0 <= value <= U32_MAX:
        return to_s32(value)
    if IMM_RANGE[0] <= value <= IMM_RANGE[1]:
        return value
    raise line.error(f"immediate {tok.text} out of range: 32-bit immediates are "
                     f"{IMM_RANGE[0]}..{IMM_RANGE[1]} in decimal or 0x0..0xffffffff in hex", tok.column)


def _reg_operand(field_name: str) -> Callable[[list[Token], Statement, _Line], None]:
    def parse(group: list[Token], statement: Statement, line: _Line) -> None:
        statement.fields[field_name] = _register(_single(group, line), line)
    return parse


def _imm_operand(group: list[Token], statement: Statement, line: _Line) -> None:
    statement.fields["imm"] = imm32(_single(group, line), line)


def _helper_operand(group: list[Token], statement: Statement, line: _Line) -> None:
    tok = _single(group, line)
    if tok.kind is TokenKind.NUMBER:
        statement.fields["imm"] = imm32(tok, line)
        return
    found = helper_id(tok.text)
    if found is None:
        raise line.error(f"unknown helper {tok.text!r} (for a bpf-to-bpf call write 'call local {tok.text}')",
                         tok.column)
    statement.fields["imm"] = found


def _mem_operand(field_name: str) -> Callable[[list[Token], Statement, _Line], None]:
    def parse(group: list[Token], statement: Statement, line: _Line) -> None:
        # [ %rN ] or [ %rN +off ] / [ %rN -off ]
        if len(group) < 2 or group[1].kind is not TokenKind.REG:
            where = group[1] if len(group) > 1 else group[0]
            raise line.error("expected a register after '['", where.column)
        statement.fields[field_name] = _register(group[1], line)
        rest = group[2:]
        if rest and rest[0].kind is TokenKind.NUMBER:
            off = rest[0]
            if not off.signed:
                raise line.error(f"expected '+' or '-' before the offset {off.text!r}", off.column)
            assert off.value is not None
            if not OFF_RANGE[0] <= off.value <= OFF_RANGE[1]:
                raise line.error(f"offset {off.text} out of range {OFF_RANGE[0]}..{OFF_RANGE[1]}", off.column)
            statement.fields["off"] = off.value
            rest = rest[1:]
        if not rest or rest[0].kind is not TokenKind.RBRACKET:
            column = rest[0].column if rest else line.end_column()
            raise line.error("expected ']' to close the memory operand", column)
        if len(rest) > 1:
            raise line.error(f"unexpected {rest[1].text!r} after ']'", rest[1].column)
    return parse


def _target(tok: Token, field_name: str, line: _Line) -> TargetRef:
    if tok.kind is TokenKind.IDENT:
        return TargetRef(field_name, tok.text, 0, tok.column)
    if not tok.signed:
        raise line.error(f"jump target {tok.text!r} must be a label or a signed offset like +{tok.text}",
                         tok.column)
    assert tok.value is not None
    low, high = FIELD_RANGE[field_name]
    if not low <= tok.value <= high:
        raise line.error(f"offset {tok.text} does not fit in {FIELD_BITS[field_name]} signed bits", tok.column)
    return TargetRef(field_name, None, tok.value, tok.column)


def _target_operand(field_name: str) -> Callable[[list[Token], Statement, _Line], None]:
    def parse(group: list[Token], statement: Statement, line: _Line) -> None:
        statement.target = _target(_single(group, line), field_name, line)
    return parse


def _lddw_operand(group: list[Token], statement: Statement, line: _Line) -> None:
    head = group[0]
    if head.kind is TokenKind.NUMBER:
        _single(group, line)
        assert head.value is not None
        if not IMM64_RANGE[0] <= head.value <= IMM64_RANGE[1]:
            raise line.error(f"immediate {head.text} does not fit in 64 bits", head.column)
        value = head.value & ((1 << 64) - 1)
        statement.fields["imm"] = to_s32(value)
        statement.fields["tail"] = to_s32(value >> 32)
        return
    kind = LDDW_KEYWORDS.get(head.text.lower())
    if kind is None:
        keywords = ", ".join(LDDW_KEYWORDS)
        raise line.error(f"unknown lddw source {head.text!r} (expected a number or one of: {keywords})", head.column)
    if len(group) != 2:
        column = group[2].column if len(group) > 2 else line.end_column()
        raise line.error(f"'{head.text}' takes one value", column)
    statement.fields["src"] = int(kind)
    if kind is LddwSource.FUNC:
        statement.target = _target(group[1], "imm", line)
    elif group[1].kind is TokenKind.NUMBER:
        statement.fields["imm"] = imm32(group[1], line)
    else:
        raise line.error(f"expected a number after '{head.text}', found {group[1].text!r}", group[1].column)


def _lddw_tail(extra: list[list[Token]], statement: Statement, line: _Line) -> None:
    """The optional operand after a pseudo source: the second slot's imm."""
    statement.fields.setdefault("tail", 0)
    if not extra:
        return
    tok = _single(extra[0], line)
    if statement.fields["src"] == LddwSource.IMM64:
        raise line.error("a plain lddw takes no third operand", tok.column)
    if tok.kind is not TokenKind.NUMBER:
        raise line.error(f"expected a number for the second slot's immediate, found {tok.text!r}", tok.column)
    statement.fields["tail"] = imm32(tok, line)


_PARSERS: dict[Operand, Callable[[list[Token], Statement, _Line], None]] = {
    Operand.DST: _reg_operand("dst"),
    Operand.SRC: _reg_operand("src"),
    Operand.IMM: _imm_operand,
    Operand.HELPER: _helper_operand,
    Operand.DST_MEM: _mem_operand("dst"),
    Operand.SRC_MEM: _mem_operand("src"),
    Operand.OFF_TARGET: _target_operand("off"),
    Operand.IMM_TARGET: _target_operand("imm"),
    Operand.LDDW: _lddw_operand,
}
