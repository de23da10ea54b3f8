"""The kernel's printf for BPF programs (bpf_trace_printk, bpf_snprintf).

As in the kernel (``bpf_bprintf_prepare`` in kernel/bpf/helpers.c, then
``bstr_printf`` in lib/vsprintf.c), formatting runs in two passes:

1. ``prepare`` checks the format against the few conversions BPF allows and
   packs the arguments into a 512-byte "binary arguments" buffer: integers
   (4 or 8 bytes, 4-aligned), characters (1 byte), strings copied from
   kernel or user memory, and ``%pI4``/``%pI6``/``%pB`` already turned into
   text. A bad format is -EINVAL, a full buffer -ENOSPC.
2. ``render`` parses the format again as vsnprintf does and takes each
   conversion's value from that buffer.

The buffer is kept as bytes, not as a list of values, because the two passes
do not always agree and the kernel's output then depends on its layout: a
``%pI4`` met when the output is already full leaves its text in the buffer
and the next conversion reads it. Where the kernel would read bytes it never
wrote (stale per-CPU memory), we read zeros.

Allowed, as the kernel allows them: flags ``0 + - space``, a width (no
``*``, no precision), ``%d %i %u %x %X`` with ``l``/``ll``, ``%c``, ``%s``
(followed by NUL, space or punctuation), ``%p`` with ``K x s S B`` or
nothing, ``%pks``/``%pus`` (kernel/user string), ``%pI4 %pi4 %pI6 %pi6``;
``%%``. Only printable ASCII and whitespace may appear. Symbols print as
``0x`` and the hex address (there is no kallsyms here).
"""

from __future__ import annotations

import errno
import string
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

BIN_ARGS_SIZE = 512  # MAX_BPRINTF_BIN_ARGS
OUTPUT_SIZE = 1024  # MAX_BPRINTF_BUF: bpf_trace_printk's line buffer
MAX_ARGS = 12  # MAX_BPRINTF_VARARGS: bpf_snprintf's limit
FIELD_WIDTH_MAX = (1 << 23) - 1
_MAX_ERRNO = 4095  # IS_ERR_VALUE: the top 4095 values are error codes, not pointers

_SPACE = frozenset(b" \t\n\v\f\r")
_PUNCT = frozenset(string.punctuation.encode())
_DIGIT = frozenset(b"0123456789")
_ALNUM = frozenset((string.ascii_letters + string.digits).encode())
_PRINT = frozenset(range(0x20, 0x7F))

# vsnprintf's flags (lib/vsprintf.c numbers them the same way).
SIGN, LEFT, PLUS, SPACE, ZEROPAD, SMALL = 1, 2, 4, 8, 16, 32
_FLAG_CHARS = {ord("-"): LEFT, ord("+"): PLUS, ord(" "): SPACE, ord("#"): 64, ord("0"): ZEROPAD}


class UnsafeReader(Protocol):
    """What ``prepare`` needs from memory (``probe.UnsafeMemory``)."""

    def kernel_bytes(self, address: int, size: int) -> bytes | int: ...
    def kernel_string(self, address: int, count: int) -> bytes | int: ...
    def user_string(self, address: int, count: int) -> bytes | int: ...
    def any_string(self, address: int, count: int) -> bytes | int: ...


@dataclass(frozen=True)
class PointerStyle:
    """How ``%p`` and ``%pK`` print: ``hash`` maps a pointer to its 32-bit id;
    ``hash_pointers=False`` is the kernel's ``no_hash_pointers``."""

    hash: Callable[[int], int]
    hash_pointers: bool = True
    kptr_restrict: int = 0


def _at(fmt: bytes, i: int) -> int:
    """fmt[i], or 0 past the end (the format's NUL)."""
    return fmt[i] if i < len(fmt) else 0


# -- pass 1: check and pack ---------------------------------------------------------

class _Packer:
    """The binary-arguments buffer being filled, and the memory strings and
    addresses are read from. ``pos`` may run past the end (as the kernel's
    pointer does after a long %pI6 or %pB)."""

    def __init__(self, memory: UnsafeReader) -> None:
        self.memory = memory
        self.data = bytearray(BIN_ARGS_SIZE)
        self.pos = 0

    @property
    def room(self) -> int:
        return BIN_ARGS_SIZE - self.pos

    def number(self, value: int, size: int) -> bool:
        self.pos = (self.pos + 3) & ~3
        if self.room < size:
            return False
        self.data[self.pos:self.pos + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        self.pos += size
        return True

    def text(self, text: bytes) -> None:
        """What snprintf(buf, room, "%s", text) leaves, then skip the whole
        text and its NUL whether it fitted or not."""
        if self.room > 0:
            kept = text[:self.room - 1]
            self.data[self.pos:self.pos + len(kept) + 1] = kept + b"\0"
        self.pos += len(text) + 1

    def copied(self, data: bytes) -> None:
        """A NUL-terminated string that was copied to fit ``room``."""
        self.data[self.pos:self.pos + len(data)] = data
        self.pos += len(data)


def _ip_text(kind: int, version: int, raw: bytes) -> bytes:
    """``%pI4``, ``%pi4`` (zero-padded), ``%pI6`` (full, colons), ``%pi6``."""
    if version == ord("4"):
        spec = "{:d}" if kind == ord("I") else "{:03d}"
        return ".".join(spec.format(b) for b in raw).encode()
    groups = [raw[k:k + 2].hex() for k in range(0, 16, 2)]
    return (":" if kind == ord("I") else "").join(groups).encode()


def prepare(fmt: bytes, args: Sequence[int], memory: UnsafeReader | None) -> bytes | int:
    """Check ``fmt`` (without its NUL) for ``len(args)`` arguments and pack
    them; the 512-byte buffer, or -EINVAL / -ENOSPC. With ``memory=None``
    only the format is checked (as the verifier does): 0 or -EINVAL."""
    packer = _Packer(memory) if memory is not None and args else None
    specs = 0
    i = 0
    while i < len(fmt):  # every step moves i forward
        c = fmt[i]
        if c >= 0x80 or not (c in _PRINT or c in _SPACE):
            return -errno.EINVAL
        if c != ord("%"):
            i += 1
            continue
        if _at(fmt, i + 1) == ord("%"):
            i += 2
            continue
        if specs >= len(args):
            return -errno.EINVAL
        i += 1
        while _at(fmt, i) in b"0+- ":
            i += 1
        if ord("1") <= _at(fmt, i) <= ord("9"):
            i += 1
            while _at(fmt, i) in _DIGIT:
                i += 1
        status, i = _conversion(fmt, i, args[specs], packer)
        if status:
            return status
        specs += 1
        i += 1
    if memory is None:
        return 0
    return bytes(packer.data) if packer is not None else bytes(BIN_ARGS_SIZE)


def _conversion(fmt: bytes, i: int, arg: int, packer: _Packer | None) -> tuple[int, int]:
    """Check and pack the conversion whose letter is at ``i``; (0 or -errno,
    index of its last character)."""
    c, nxt = _at(fmt, i), _at(fmt, i + 1)
    if c == ord("p"):
        if nxt in b"ku" and _at(fmt, i + 2) == ord("s"):
            return _string(fmt, i + 2, arg, nxt, packer)
        if nxt in b"KxsS":
            return _number(arg, 8, packer), i + 1
        if nxt == 0 or nxt in _SPACE or nxt in _PUNCT:
            return _number(arg, 8, packer), i
        if nxt == ord("B"):
            if packer is not None:  # the kernel checks no room here
                packer.text(_symbol(arg))
            return 0, i + 1
        if nxt in b"iI" and _at(fmt, i + 2) in b"46":
            if packer is not None:
                size = 4 if _at(fmt, i + 2) == ord("4") else 16
                if packer.room < size:
                    return -errno.ENOSPC, i + 2
                raw = packer.memory.kernel_bytes(arg, size)
                packer.text(_ip_text(nxt, _at(fmt, i + 2), raw if isinstance(raw, bytes) else bytes(size)))
            return 0, i + 2
        return -errno.EINVAL, i
    if c == ord("s"):
        return _string(fmt, i, arg, c, packer)
    if c == ord("c"):
        if packer is not None:
            if packer.room <= 0:
                return -errno.ENOSPC, i
            packer.copied(bytes([arg & 0xFF]))
        return 0, i
    size = 4
    for _ in range(2):  # "l" is long, "ll" long long: both 8 bytes
        if _at(fmt, i) == ord("l"):
            size = 8
            i += 1
    if _at(fmt, i) not in b"iduxX":
        return -errno.EINVAL, i
    return _number(arg, size, packer), i


def _number(arg: int, size: int, packer: _Packer | None) -> int:
    if packer is not None and not packer.number(arg, size):
        return -errno.ENOSPC
    return 0


def _string(fmt: bytes, i: int, arg: int, kind: int, packer: _Packer | None) -> tuple[int, int]:
    """``%s`` (kind ``s``: user or kernel by address), ``%pks``, ``%pus``;
    ``i`` is at the final ``s``. A string that cannot be read is empty."""
    nxt = _at(fmt, i + 1)
    if nxt != 0 and nxt not in _SPACE and nxt not in _PUNCT:
        return -errno.EINVAL, i
    if packer is None:
        return 0, i
    if packer.room <= 0:
        # The kernel only tests for exactly full; past the end it would copy
        # out of bounds. Both are "no room" here.
        return -errno.ENOSPC, i
    memory = packer.memory
    read = {ord("k"): memory.kernel_string, ord("u"): memory.user_string}.get(kind, memory.any_string)
    copied = read(arg, packer.room)
    packer.copied(copied if isinstance(copied, bytes) and copied else b"\0")
    return 0, i


def _symbol(address: int) -> bytes:
    """What %pS/%ps/%pB print for an address no symbol covers."""
    return f"0x{address:x}".encode()


def check_format(fmt: bytes, num_args: int) -> int:
    """The verifier's check of a bpf_snprintf format: 0 or -EINVAL."""
    result = prepare(fmt, [0] * num_args, None)
    return result if isinstance(result, int) else 0


# -- pass 2: render ---------------------------------------------------------------------

class _Output:
    """vsnprintf's output: ``pos`` counts every character generated, only the
    first ``size`` land in ``data``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = bytearray()
        self.pos = 0

    def put(self, text: bytes) -> None:
        if self.pos < self.size:
            self.data += text[:self.size - self.pos]
        self.pos += len(text)

    def pad(self, char: bytes, count: int) -> None:
        """``count`` copies of the one-byte ``char`` (none if count <= 0)."""
        if count > 0:
            if self.pos < self.size:
                self.data += char * min(count, self.size - self.pos)
            self.pos += count

    def finish(self) -> bytes:
        """The bytes the kernel writes: the text, NUL-terminated within size."""
        if self.size == 0:
            return b""
        return bytes(self.data[:self.size - 1]) + b"\0"


class _Args:
    """Reads the packed arguments as bstr_printf's get_arg does."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def number(self, size: int) -> int:
        self.pos = (self.pos + min(size, 4) - 1) & ~(min(size, 4) - 1)
        value = int.from_bytes(self.data[self.pos:self.pos + size].ljust(size, b"\0"), "little")
        self.pos += size
        return value

    def string(self) -> bytes:
        nul = self.data.find(0, self.pos)
        text = self.data[self.pos:nul if nul >= 0 else len(self.data)]
        return bytes(text)


@dataclass
class _Spec:
    kind: str  # "text", "%", "c", "s", "p", "int", "invalid"
    end: int  # index just past this token
    flags: int = 0
    width: int = -1
    size: int = 4  # bytes of an integer argument
    base: int = 10


def _wrap32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value & 0x8000_0000 else value


def _decode(fmt: bytes, i: int) -> _Spec:
    """vsnprintf's format_decode, for the conversions ``prepare`` lets through."""
    if fmt[i] != ord("%"):
        nxt = fmt.find(b"%", i)
        return _Spec("text", nxt if nxt >= 0 else len(fmt))
    spec = _Spec("invalid", i + 1)
    j = i + 1
    while _at(fmt, j) in _FLAG_CHARS:
        spec.flags |= _FLAG_CHARS[fmt[j]]
        j += 1
    if _at(fmt, j) in _DIGIT:
        width = 0
        while _at(fmt, j) in _DIGIT:  # an int that wraps, as skip_atoi's does
            width = _wrap32(width * 10 + fmt[j] - ord("0"))
            j += 1
        spec.width = max(-FIELD_WIDTH_MAX, min(FIELD_WIDTH_MAX, width))
    long_count = 0
    while _at(fmt, j) == ord("l") and long_count < 2:
        long_count += 1
        j += 1
    c = _at(fmt, j)
    spec.end = j + 1
    if c in b"%csp":
        spec.kind = chr(c)
    elif c in b"diuxX":
        spec.kind = "int"
        spec.size = 8 if long_count else 4
        spec.base = 10 if c in b"diu" else 16
        spec.flags |= SIGN if c in b"di" else SMALL if c == ord("x") else 0
    else:
        spec.end = j
    return spec


def _number_text(num: int, flags: int, width: int, base: int) -> list[tuple[bytes, int]]:
    """vsnprintf's number() as (text, repeat) pieces; ``num`` is 64-bit."""
    if flags & LEFT:
        flags &= ~ZEROPAD
    sign = b""
    if flags & SIGN:
        if num >= 1 << 63:
            sign, num = b"-", (1 << 64) - num
        elif flags & PLUS:
            sign = b"+"
        elif flags & SPACE:
            sign = b" "
    digits = (f"{num:x}" if flags & SMALL else f"{num:X}") if base == 16 else f"{num:d}"
    pad = width - len(sign) - len(digits)
    if flags & LEFT:
        return [(sign + digits.encode(), 1), (b" ", pad)]
    if flags & ZEROPAD:
        return [(sign, 1), (b"0", pad), (digits.encode(), 1)]
    return [(b" ", pad), (sign + digits.encode(), 1)]


def _widen(text: bytes, flags: int, width: int) -> list[tuple[bytes, int]]:
    """A string padded with spaces to ``width`` (widen_string)."""
    pad = width - len(text)
    return [(text, 1), (b" ", pad)] if flags & LEFT else [(b" ", pad), (text, 1)]


def _pointer_text(letter: int, value: int, spec: _Spec, style: PointerStyle) -> list[tuple[bytes, int]]:
    """What vsnprintf's pointer() prints for ``%p`` followed by ``letter``."""
    if letter in b"SsFf":
        return _widen(_symbol(value), spec.flags, spec.width)
    if letter == ord("x"):
        return _raw_pointer(value, spec)
    if letter == ord("K"):
        if style.kptr_restrict == 0:
            return _hashed_pointer(value, spec, style)
        # 1: the real value for a privileged process (test runs are); 2: zeros.
        return _raw_pointer(value if style.kptr_restrict == 1 else 0, spec)
    if not style.hash_pointers:
        return _raw_pointer(value, spec)
    return _hashed_pointer(value, spec, style)


def _raw_pointer(value: int, spec: _Spec) -> list[tuple[bytes, int]]:
    flags, width = spec.flags | SMALL, spec.width
    if width == -1:
        flags, width = flags | ZEROPAD, 16
    return _number_text(value, flags & ~SIGN, width, 16)


def _hashed_pointer(value: int, spec: _Spec, style: PointerStyle) -> list[tuple[bytes, int]]:
    # NULL and error values are no addresses, so the kernel prints them as they are.
    if value == 0 or value >= (1 << 64) - _MAX_ERRNO:
        return _raw_pointer(value, spec)
    return _raw_pointer(style.hash(value) & 0xFFFF_FFFF, spec)


def render(fmt: bytes, packed: bytes, size: int, style: PointerStyle) -> tuple[bytes, int]:
    """Format into a buffer of ``size`` bytes (bstr_printf). Returns what the
    kernel writes there (the text cut to ``size - 1`` bytes and a NUL; nothing
    for size 0) and the length the whole text would have had."""
    out, args = _Output(size), _Args(packed)
    i = 0
    while i < len(fmt):  # every token moves i forward, except an invalid one, which stops
        spec = _decode(fmt, i)
        pieces: list[tuple[bytes, int]] = []
        if spec.kind == "text":
            pieces = [(fmt[i:spec.end], 1)]
        elif spec.kind == "%":
            pieces = [(b"%", 1)]
        elif spec.kind == "c":
            char = bytes([args.number(1)])
            pieces = [(char, 1), (b" ", spec.width - 1)] if spec.flags & LEFT else [(b" ", spec.width - 1),
                                                                                   (char, 1)]
        elif spec.kind == "s":
            text = args.string()
            args.pos += len(text) + 1
            pieces = _widen(text, spec.flags, spec.width)
        elif spec.kind == "p":
            letter = _at(fmt, spec.end)
            if letter in b"SsFfxK" or letter not in _ALNUM:
                pieces = _pointer_text(letter, args.number(8), spec, style)
            elif out.pos < out.size:  # already formatted by prepare; taken only while there is room
                text = args.string()
                args.pos += len(text) + 1
                pieces = [(text, 1)]
            while _at(fmt, spec.end) in _ALNUM:
                spec.end += 1
        elif spec.kind == "int":
            num = args.number(spec.size)
            if spec.size == 4 and spec.flags & SIGN and num & 0x8000_0000:
                num |= 0xFFFF_FFFF_0000_0000  # an int, sign-extended to long long
            pieces = _number_text(num, spec.flags, spec.width, spec.base)
        else:
            break
        for text, count in pieces:
            if count == 1:
                out.put(text)
            else:
                out.pad(text, count)
        i = spec.end
    return out.finish(), out.pos
