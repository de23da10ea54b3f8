"""Splitting one line of assembler source into tokens, each with its column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from ..errors import AssemblyError


class TokenKind(Enum):
    REG = "register"
    NUMBER = "number"
    IDENT = "name"
    COMMA = "','"
    LBRACKET = "'['"
    RBRACKET = "']'"
    COLON = "':'"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    column: int  # 1-based
    # NUMBER: its value. REG: the register number, or None if the name is no %rN.
    value: int | None = None
    signed: bool = False  # NUMBER written with a leading '+' or '-'
    hex: bool = False  # NUMBER written in hex


# A sign may be detached from its digits ("[%r1 - 8]"). The digit run is taken
# whole and checked afterwards, so "0x1g" is one bad number, not "0x1" + "g".
_TOKEN = re.compile(r"""
      (?P<space>[ \t\f\v\r]+)
    | (?P<comment>\#.*)
    | (?P<reg>%[A-Za-z0-9_]*)
    | (?P<number>[+-][ \t]*[0-9][A-Za-z0-9_]*|[0-9][A-Za-z0-9_]*)
    | (?P<ident>[A-Za-z_.][A-Za-z0-9_.]*)
    | (?P<punct>[,\[\]:])
""", re.VERBOSE)

_PUNCT = {",": TokenKind.COMMA, "[": TokenKind.LBRACKET, "]": TokenKind.RBRACKET, ":": TokenKind.COLON}
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_DEC = re.compile(r"[0-9]+")
_REG = re.compile(r"%r(0|[1-9][0-9]?)")

# Longer numbers cannot fit any field; refusing them early keeps int() cheap.
MAX_NUMBER_CHARS = 40


def tokenize(text: str, line: int, source: str | None = None) -> list[Token]:
    """The tokens of one source line (comments dropped)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):  # every match consumes at least one character
        match = _TOKEN.match(text, pos)
        if match is None:
            raise AssemblyError(f"unexpected character {text[pos]!r}", line, pos + 1, source)
        kind, lexeme, column = match.lastgroup, match.group(), pos + 1
        pos = match.end()
        if kind == "space" or kind == "comment":
            continue
        if kind == "reg":
            reg = _REG.fullmatch(lexeme)
            tokens.append(Token(TokenKind.REG, lexeme, column, int(reg.group(1)) if reg else None))
        elif kind == "number":
            tokens.append(_number(lexeme, line, column, source))
        elif kind == "ident":
            tokens.append(Token(TokenKind.IDENT, lexeme, column))
        else:
            tokens.append(Token(_PUNCT[lexeme], lexeme, column))
    return tokens


def _number(lexeme: str, line: int, column: int, source: str | None) -> Token:
    sign = lexeme[0] if lexeme[0] in "+-" else ""
    digits = lexeme[len(sign):].lstrip(" \t")
    if len(digits) > MAX_NUMBER_CHARS:
        raise AssemblyError(f"number too long: {digits[:20]}...", line, column, source)
    if _HEX.fullmatch(digits):
        magnitude, is_hex = int(digits, 16), True
    elif _DEC.fullmatch(digits):
        magnitude, is_hex = int(digits, 10), False
    else:
        raise AssemblyError(f"malformed number {lexeme!r}", line, column, source)
    value = -magnitude if sign == "-" else magnitude
    return Token(TokenKind.NUMBER, lexeme, column, value, signed=bool(sign), hex=is_hex)
