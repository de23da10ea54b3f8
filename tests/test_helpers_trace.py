"""bpf_trace_printk and bpf_snprintf: the formats BPF allows and what they print.

Expected texts are worked out by hand from the kernel's rules (and were
checked once against the live kernel; tests/test_helpers_kernel.py keeps
checking), or come from Python's printf, which agrees with C's for the
integer conversions and flags used.
"""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpfvm import assemble, run
from ebpfvm.helpers import ArgFlag, ArgKind, HelperEnv, default_registry
from ebpfvm.helpers.bprintf import BIN_ARGS_SIZE, check_format
from ebpfvm.helpers.env import KERNEL_SPACE_HINT, USER_SPACE_HINT
from ebpfvm.helpers.strings import NotAConstString

EINVAL, ENOSPC = -errno.EINVAL, -errno.ENOSPC
MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def printk(fmt: bytes, *args: int, env: HelperEnv | None = None, fmt_size: int | None = None) -> tuple[int, list[str]]:
    """Run a program calling bpf_trace_printk with ``fmt`` (in the input
    memory, NUL added) and ``args``; (r0 signed, the env's trace log)."""
    env = env if env is not None else HelperEnv()
    mem = fmt + b"\0"
    lines = [f"mov %r2, {len(mem) if fmt_size is None else fmt_size}"]
    lines += [f"lddw %r{3 + k}, {arg & MASK64:#x}" for k, arg in enumerate(args)]
    result = run(assemble("\n".join(lines + ["call bpf_trace_printk", "exit"])), mem, env=env)
    return _signed(result.r0), env.trace_log


def snprintf(fmt: bytes, *args: int, size: int = 64, env: HelperEnv | None = None,
             data_len: int | None = None) -> tuple[int, bytes]:
    """bpf_snprintf into the first 64 bytes of the input memory (prefilled
    with 0xff); the format is at 64, the u64 arguments at 128."""
    assert len(fmt) < 63 and len(args) <= 16
    mem = b"\xff" * 64 + fmt.ljust(64, b"\0") + b"".join(struct.pack("<Q", a & MASK64) for a in args).ljust(128, b"\0")
    program = assemble(f"""
        mov %r6, %r1
        mov %r2, {size}
        mov %r3, %r6
        add %r3, 64
        mov %r4, %r6
        add %r4, 128
        mov %r5, {8 * len(args) if data_len is None else data_len}
        call bpf_snprintf
        exit""")
    result = run(program, mem, env=env if env is not None else HelperEnv())
    return _signed(result.r0), result.mem[:64]


# -- bpf_trace_printk ------------------------------------------------------------------------

def test_trace_printk_logs_the_message_and_returns_its_length() -> None:
    r0, log = printk(b"x=%d y=%u\n", -3, 7)
    assert log == ["x=-3 y=7\n"]
    assert r0 == len("x=-3 y=7\n")


def test_trace_log_accumulates_across_calls_and_runs() -> None:
    env = HelperEnv()
    printk(b"one", env=env)
    printk(b"two %x", 255, env=env)
    assert env.trace_log == ["one", "two ff"]


@pytest.mark.parametrize("fmt", [
    b"%d %d %d %d",   # a fourth conversion: trace_printk takes three arguments
    b"%q", b"%.3d", b"%*d", b"%hd", b"%zu", b"%o", b"%n", b"%#x",
    b"%lllx",         # three l's leave an 'l' where the conversion should be
    b"%sa",           # %s must be followed by the end, a space or punctuation
    b"%pa", b"%pI5",  # only the listed %p extensions
    b"tab\x7f", b"caf\xc3\xa9", b"bell\x07",  # only printable ASCII and whitespace
    b"%",
])
def test_formats_outside_the_allowed_set_are_einval(fmt: bytes) -> None:
    assert printk(fmt, 1, 2, 3) == (EINVAL, [])


def test_fmt_must_hold_a_nul_within_fmt_size() -> None:
    assert printk(b"hello", fmt_size=5) == (EINVAL, [])
    assert printk(b"hello", fmt_size=6) == (5, ["hello"])


def test_percent_percent_needs_no_argument() -> None:
    assert printk(b"100%% sure") == (9, ["100% sure"])


def test_the_line_buffer_keeps_1023_bytes_but_the_length_counts_all() -> None:
    r0, log = printk(b"%1500d", 7)
    assert r0 == 1500
    assert log == [" " * 1023]


def test_a_nul_character_ends_the_logged_line_but_not_the_count() -> None:
    assert printk(b"a%cb", 0) == (3, ["a"])


def test_strings_and_ips_from_simulated_memory() -> None:
    env = HelperEnv()
    env.kernel_memory.add_region("kstr", KERNEL_SPACE_HINT, b"kernel\0")
    env.kernel_memory.add_region("ip", KERNEL_SPACE_HINT + 0x100, bytes([192, 168, 0, 1]))
    env.user_memory.add_region("ustr", USER_SPACE_HINT, b"user\0")
    printk(b"%s %s", KERNEL_SPACE_HINT, USER_SPACE_HINT, env=env)
    printk(b"%pks|%pus|%pks", KERNEL_SPACE_HINT, USER_SPACE_HINT, USER_SPACE_HINT, env=env)
    printk(b"%pI4 %pi4", KERNEL_SPACE_HINT + 0x100, KERNEL_SPACE_HINT + 0x100, env=env)
    printk(b"[%-8s][%8s]", KERNEL_SPACE_HINT, 0, env=env)
    assert env.trace_log == [
        "kernel user",
        "kernel|user|",          # a user address read as kernel memory: empty
        "192.168.0.1 192.168.000.001",
        "[kernel  ][        ]",  # NULL: an empty string, padded
    ]


def test_ipv6_and_unreadable_addresses() -> None:
    env = HelperEnv()
    env.kernel_memory.add_region("ip6", KERNEL_SPACE_HINT, bytes(15) + b"\x01")
    printk(b"%pI6 %pi6", KERNEL_SPACE_HINT, KERNEL_SPACE_HINT, env=env)
    printk(b"%pI4 %pI6c", 0, 0, env=env)
    assert env.trace_log == [
        "0000:0000:0000:0000:0000:0000:0000:0001 00000000000000000000000000000001",
        "0.0.0.0 0000:0000:0000:0000:0000:0000:0000:0000",  # zeros; the 'c' is ignored
    ]


def test_strings_from_the_programs_own_stack() -> None:
    # "hi" on the stack, its address as the %s argument.
    env = HelperEnv()
    program = assemble("""
        sth [%r10-4], 0x6968
        stb [%r10-2], 0
        mov %r3, %r10
        add %r3, -4
        mov %r2, 5
        call bpf_trace_printk
        exit""")
    result = run(program, b"<%s>\0", env=env)
    assert (result.r0, env.trace_log) == (4, ["<hi>"])


def test_pointers() -> None:
    env = HelperEnv()
    printk(b"%p|%p|%px|", 0, 0xFFFF_FFFF_FFFF_FFF0, 0x1234, env=env)
    printk(b"%20px|%-6px|", 0x1234, 0x12, env=env)
    hashed = f"{env.hash_pointer(0x1234):016x}"
    printk(b"%p %pK %p", 0x1234, 0x1234, 0x5678, env=env)
    printk(b"%ps|%pS|%pB|", 0x10, 0x20, 0x30, env=env)
    printk(b"%8ps|%-6pS|%8pB|", 0x10, 0x20, 0x30, env=env)
    assert env.trace_log == [
        "0000000000000000|fffffffffffffff0|0000000000001234|",  # NULL and ERR_PTR values print raw
        "                1234|12    |",  # a width replaces the zero padding
        f"{hashed} {hashed} {env.hash_pointer(0x5678):016x}",
        "0x10|0x20|0x30|",  # no symbols: the address in hex
        "    0x10|0x20  |0x30|",  # %pB is formatted ahead, so its width is lost
    ]
    assert hashed.startswith("00000000")  # a 32-bit id
    assert env.hash_pointer(0x1234) == HelperEnv().hash_pointer(0x1234)  # reproducible
    assert env.hash_pointer(0x1234) != HelperEnv(pointer_key=b"other").hash_pointer(0x1234)


def test_pointer_policies() -> None:
    assert printk(b"%p", 0x1234, env=HelperEnv(hash_pointers=False))[1] == ["0000000000001234"]
    assert printk(b"%pK", 0x1234, env=HelperEnv(kptr_restrict=1))[1] == ["0000000000001234"]
    assert printk(b"%pK", 0x1234, env=HelperEnv(kptr_restrict=2))[1] == ["0000000000000000"]


def test_pointer_suffix_letters_are_swallowed() -> None:
    assert printk(b"%pxyz|", 16)[1] == ["0000000000000010|"]


def test_a_percent_right_after_p_is_its_own_conversion() -> None:
    assert printk(b"%p%d", 0, 9) == (17, ["00000000000000009"])
    assert printk(b"%p%%", 0) == (17, ["0000000000000000%"])


# -- integers: against Python's printf ---------------------------------------------------------------

_FLAGS = st.text(alphabet="-0+ ", max_size=3)
_WIDTH = st.one_of(st.just(""), st.integers(1, 30).map(str))


def _c_format(flags: str, width: str, conversion: str, value: int) -> str:
    """What C prints: Python's printf does the same for these flags, except
    that C ignores '+' and ' ' for unsigned conversions."""
    if conversion in "uxX":
        flags = flags.replace("+", "").replace(" ", "")
    return f"%{flags}{width}{'d' if conversion in 'iu' else conversion}" % value


@given(_FLAGS, _WIDTH, st.sampled_from(["d", "i", "u", "x", "X"]), st.sampled_from(["", "l", "ll"]),
       st.integers(0, MASK64))
def test_integer_conversions_match_c(flags: str, width: str, conversion: str, length: str, raw: int) -> None:
    bits = 32 if not length else 64
    value = raw & ((1 << bits) - 1)
    if conversion in "di" and value >> (bits - 1):
        value -= 1 << bits
    fmt = f"%{flags}{width}{length}{conversion}"
    expected = _c_format(flags, width, conversion, value)
    assert printk(fmt.encode(), raw) == (len(expected), [expected])


@given(st.sampled_from([b"%c", b"%5c", b"%-5c", b"%s"]), st.integers(0, MASK64))
def test_snprintf_matches_trace_printk(fmt: bytes, arg: int) -> None:
    if fmt == b"%s":
        arg &= (1 << 40) - 1  # below every region of the program (whose memory differs between the two)
    env = HelperEnv()
    r0, log = printk(fmt, arg, env=env)
    length, out = snprintf(fmt, arg)
    assert length == r0 + 1
    assert out[:r0].split(b"\0", 1)[0].decode("utf-8", "surrogateescape") == log[0]


# -- bpf_snprintf -------------------------------------------------------------------------------------

def test_snprintf_writes_nul_terminated_and_returns_length_plus_one() -> None:
    assert snprintf(b"%d-%s", -12, 0) == (5, b"-12-\0" + b"\xff" * 59)


def test_snprintf_cuts_to_size_and_leaves_the_rest() -> None:
    assert snprintf(b"abcdef %d", 12345, size=4) == (13, b"abc\0" + b"\xff" * 60)
    assert snprintf(b"abcdef %d", 12345, size=0) == (13, b"\xff" * 64)


def test_snprintf_takes_up_to_twelve_arguments() -> None:
    fmt = b"%d" * 12
    assert snprintf(fmt, *range(12))[0] == len("01234567891011") + 1
    assert snprintf(fmt + b"%d", *range(13))[0] == EINVAL  # more than 12 arguments (data_len 104)
    assert snprintf(b"%d %d", 1)[0] == EINVAL  # fewer arguments than conversions


def test_snprintf_checks_data_len() -> None:
    assert snprintf(b"%d", 1, data_len=4)[0] == EINVAL
    assert snprintf(b"%d", 1, 2, data_len=12)[0] == EINVAL


def _snprintf_without_data(data_len: int) -> int:
    """bpf_snprintf(mem, 8, "plain", NULL, data_len)."""
    program = assemble(f"mov %r2, 8\nmov %r3, %r1\nadd %r3, 8\nmov %r4, 0\nmov %r5, {data_len}\n"
                       "call bpf_snprintf\nexit")
    return _signed(run(program, bytes(8) + b"plain\0").r0)


def test_snprintf_with_null_data() -> None:
    assert _snprintf_without_data(0) == 6
    assert _snprintf_without_data(8) == EINVAL


def test_snprintf_to_null_with_size_zero_measures() -> None:
    mem = b"%d:%d\0"
    program = assemble("""
        mov %r3, %r1
        stdw [%r10-16], 100
        stdw [%r10-8], 2000
        mov %r4, %r10
        add %r4, -16
        mov %r1, 0
        mov %r2, 0
        mov %r5, 16
        call bpf_snprintf
        exit""")
    assert run(program, mem).r0 == len("100:2000") + 1


def test_snprintf_format_must_be_nul_terminated() -> None:
    program = assemble("mov %r3, %r1\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 8\nmov %r4, 0\nmov %r5, 0\n"
                       "call bpf_snprintf\nexit")
    with pytest.raises(NotAConstString) as info:
        run(program, b"no nul here")
    assert info.value.pc == 6


def test_strings_fill_the_argument_buffer_then_enospc() -> None:
    # Each %s copies at most what is left of the 512-byte buffer, NUL included.
    env = HelperEnv()
    long = b"x" * 300
    env.kernel_memory.add_region("long", KERNEL_SPACE_HINT, long + b"\0")
    k = KERNEL_SPACE_HINT
    r0, _ = snprintf(b"%s%s", k, k, size=0, env=env)
    assert r0 == 300 + 210 + 1  # the second string keeps 210 bytes and its NUL: 211 were left
    assert snprintf(b"%s%s%d", k, k, 1, env=env)[0] == ENOSPC  # no room left for an int
    assert snprintf(b"%s%s%c", k, k, 65, env=env)[0] == ENOSPC


def test_check_format_for_the_verifier() -> None:
    assert check_format(b"%d %s %pI4 %pks %c %%", 5) == 0
    assert check_format(b"%d %d", 1) == EINVAL
    assert check_format(b"%lq", 1) == EINVAL
    assert BIN_ARGS_SIZE == 512


def test_prototypes_follow_the_kernel() -> None:
    registry = default_registry()
    printk_proto = registry[6].proto
    assert printk_proto.gpl_only
    assert printk_proto.args == (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE)
    assert printk_proto.flags(0) == ArgFlag.RDONLY
    snprintf_proto = registry[165].proto
    assert snprintf_proto.gpl_only
    assert snprintf_proto.args == (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE_OR_ZERO, ArgKind.PTR_TO_CONST_STR,
                                   ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE_OR_ZERO)
    assert snprintf_proto.flags(0) == ArgFlag.MAYBE_NULL
    assert snprintf_proto.flags(3) == ArgFlag.MAYBE_NULL | ArgFlag.RDONLY
