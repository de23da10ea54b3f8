"""The .data parser: every section kind, both raw forms, and errors that name file and line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.conformance.dataformat import (FLAG_NO_REGISTER_OFFSET, MAX_FILE_BYTES, ConformanceCase, DataFormatError,
                                           load_case, parse_case)
from ebpfvm.errors import InputFileError, UserInputError

FULL = """\
# Copyright (c) somebody
# SPDX-License-Identifier: MIT
-- c
int entry(void) { return 1; }
-- x is not a section inside C source
-- asm
# a comment the assembler sees
ldxb %r0, [%r1+1]
exit
-- raw
0x0000000000011071
149
-- mem
00 2a
ff
-- result
0x2a
-- no register offset
call instruction
"""


def test_every_section_kind() -> None:
    case = parse_case(FULL, "dir/full.data")
    assert case.name == "full"
    assert case.path == "dir/full.data"
    assert case.asm == "# a comment the assembler sees\nldxb %r0, [%r1+1]\nexit\n"
    assert case.asm_line == 6
    assert case.file_line_of_asm_line(2) == 8  # "ldxb ..." is file line 8
    assert case.raw == (0x0000000000011071, 0x95)
    assert case.raw_bytes() == bytes.fromhex("7110010000000000") + bytes.fromhex("9500000000000000")
    assert case.mem == b"\x00\x2a\xff"
    assert case.expected_result == 0x2A
    assert case.expected_error is None and not case.expects_error
    assert case.flags == frozenset({FLAG_NO_REGISTER_OFFSET})
    assert case.notes == ("call instruction",)
    assert case.header == ("# Copyright (c) somebody", "# SPDX-License-Identifier: MIT")
    assert case.interpreter_only is None


def test_raw_byte_form_is_little_endian_slot() -> None:
    case = parse_case("-- raw\n07 00 01 00 01 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n")
    assert case.raw == (0x0000000100010007, 0x95)
    assert case.raw_bytes() == bytes.fromhex("0700010001000000 9500000000000000")
    assert case.asm is None


def test_raw_words_decimal_and_comments() -> None:
    case = parse_case("-- raw\n# exit\n149  # trailing comment\n\n-- result\n0\n")
    assert case.raw == (149,)


def test_error_without_trailing_newline_and_empty_error() -> None:
    case = parse_case("-- asm\nlock\nexit\n-- error\nInvalid number of operands for lock")
    assert case.expected_error == "Invalid number of operands for lock"
    assert case.expects_error
    empty = parse_case("-- raw\n0x95\n-- error\n")
    assert empty.expected_error == ""
    assert empty.expects_error


@pytest.mark.parametrize("text, value", [
    ("0x1", 1), ("42", 42), ("0xffffffffffffffff", 2**64 - 1), ("-1", 2**64 - 1),
    ("18446744073709551615", 2**64 - 1), ("0X2A", 42), ("  0x10  # sixteen", 16),
])
def test_result_numbers(text: str, value: int) -> None:
    assert parse_case(f"-- asm\nexit\n-- result\n{text}\n").expected_result == value


def test_crlf_line_endings() -> None:
    case = parse_case("# h\r\n-- asm\r\nexit\r\n-- result\r\n0x3\r\n")
    assert case.expected_result == 3
    assert case.asm == "exit\n"


def test_interpreter_only_header_mark() -> None:
    case = parse_case("# reads past the end\n# interpreter-only: out-of-bounds read\n-- asm\nexit\n-- error\nx\n")
    assert case.interpreter_only == "out-of-bounds read"


def test_blank_header_lines_and_section_name_spacing() -> None:
    case = parse_case("\n#\n\n--   no   register   offset\n-- ASM\nexit\n-- result\n1\n")
    assert case.flags == frozenset({FLAG_NO_REGISTER_OFFSET})
    assert case.asm == "exit\n"


def _error(text: str, path: str = "cases/x.data") -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        parse_case(text, path)
    err = info.value
    assert isinstance(err, InputFileError) and isinstance(err, UserInputError)
    assert err.path == path
    assert "\n" not in str(err)
    return err


def test_unknown_section_names_file_and_line() -> None:
    err = _error("# h\n-- asm\n-- Unknown directive\n-- error\nx\n")
    assert err.line == 3
    assert str(err).startswith("cases/x.data:3: unknown section '-- Unknown directive'")


def test_bare_dashes_are_an_unknown_section() -> None:
    assert _error("-- asm\nexit\n--\n-- result\n1\n").line == 3


@pytest.mark.parametrize("text, line, words", [
    ("-- asm\nexit\n-- result\n0xzz\n", 4, "bad number '0xzz'"),
    ("-- asm\nexit\n-- result\n1 2\n", 4, "exactly one number"),
    ("-- asm\nexit\n-- result\n1\n2\n", 5, "exactly one number"),
    ("-- asm\nexit\n-- result\n\n", 3, "is empty"),
    ("-- asm\nexit\n-- result\n0x10000000000000000\n", 4, "does not fit in 64 bits"),
    ("-- asm\nexit\n-- result\n-9223372036854775809\n", 4, "does not fit in 64 bits"),
    ("-- raw\n0x95\nnope\n-- result\n1\n", 3, "bad number 'nope'"),
    ("-- raw\n95 00 00\n-- result\n1\n", 2, "bad raw instruction"),
    ("-- raw\n95 00 00 00 00 00 00 zz\n-- result\n1\n", 2, "bad raw instruction"),
    ("-- raw\n\n-- result\n1\n", 1, "no instructions"),
    ("-- raw\n0x95\n-- mem\n00 1\n0g\n-- result\n1\n", 5, "bad byte '0g'"),
    ("-- raw\n0x95\n-- mem\n100\n-- result\n1\n", 4, "bad byte '100'"),
    ("mov %r0, 1\n-- asm\nexit\n-- result\n1\n", 1, "text before the first section"),
    ("-- asm\nexit\n-- result\n1\n-- asm\nexit\n", 5, "second '-- asm' section (the first is on line 1)"),
    ("-- asm\nexit\n-- result\n1\n-- error\nx\n", 5, "both '-- result' and '-- error'"),
])
def test_malformed_files_name_the_line(text: str, line: int, words: str) -> None:
    err = _error(text)
    assert err.line == line
    assert words in str(err)
    assert str(err).startswith(f"cases/x.data:{line}: ")


@pytest.mark.parametrize("text, words", [
    ("# only a header\n", "no '-- asm' or '-- raw' section"),
    ("# h\n-- result\n0x0\n", "no '-- asm' or '-- raw' section"),
    ("", "no '-- asm' or '-- raw' section"),
    ("-- asm\nexit\n", "no '-- result' or '-- error' section"),
])
def test_missing_sections(text: str, words: str) -> None:
    err = _error(text)
    assert words in str(err)


def test_hex_number_length_is_bounded() -> None:
    # A 10 000 digit number must be refused by the pattern, not by int().
    err = _error("-- asm\nexit\n-- result\n0x" + "f" * 10_000 + "\n")
    assert "bad number" in str(err)
    assert len(str(err)) < 200


def test_load_case_reads_files(tmp_path) -> None:
    path = tmp_path / "add-one.data"
    path.write_text("# adds\n-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
    case = load_case(path)
    assert isinstance(case, ConformanceCase)
    assert case.name == "add-one"
    assert case.path == str(path)


def test_load_case_errors_are_one_line(tmp_path) -> None:
    missing = tmp_path / "missing.data"
    with pytest.raises(DataFormatError, match="cannot read"):
        load_case(missing)
    binary = tmp_path / "binary.data"
    binary.write_bytes(b"-- asm\n\xff\xfe\n")
    with pytest.raises(DataFormatError, match="not UTF-8"):
        load_case(binary)
    huge = tmp_path / "huge.data"
    huge.write_bytes(b"#" * (MAX_FILE_BYTES + 10))
    with pytest.raises(DataFormatError, match="larger than"):
        load_case(huge)
    with pytest.raises(DataFormatError, match="cannot read"):
        load_case(tmp_path)  # a directory


_LINES = st.one_of(
    st.sampled_from(["-- asm", "-- raw", "-- mem", "-- result", "-- error", "-- c", "-- no register offset",
                     "-- bogus", "--", "# comment", "", "exit", "0x95", "95 00 00 00 00 00 00 00", "00 ff",
                     "0xffffffffffffffff", "-1", "0x", "mov %r0, 1"]),
    st.text(max_size=40),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINES, max_size=30))
def test_fuzz_structured_lines_never_crash(lines: list[str]) -> None:
    try:
        case = parse_case("\n".join(lines), "fuzz.data")
    except DataFormatError as err:
        assert str(err).startswith("fuzz.data")
        return
    assert case.asm is not None or case.raw is not None
    assert (case.expected_result is None) != (case.expected_error is None)
    if case.expected_result is not None:
        assert 0 <= case.expected_result < 2**64
    assert all(0 <= w < 2**64 for w in case.raw or ())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_random_text_never_crashes(text: str) -> None:
    try:
        parse_case(text, "fuzz.data")
    except DataFormatError:
        pass
