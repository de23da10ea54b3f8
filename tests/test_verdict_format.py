"""The ``.case`` format of the verifier verdict corpus: parsing, writing,
in-place verdict updates, and errors that name file and line.  No kernel."""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpfvm.conformance import verdicts as v
from ebpfvm.errors import InputFileError, UserInputError

SAMPLE = """\
# Reading r0 before anything wrote it.
# Second line of the description.
-- asm
# the whole program
exit
-- prog_type
socket_filter
-- verdict
reject
-- error
R0 !read_ok
-- errno
EACCES
"""


def test_parse_sample() -> None:
    case = v.parse_case(SAMPLE, "sample.case")
    assert case.description == "Reading r0 before anything wrote it.\nSecond line of the description."
    assert case.asm == "# the whole program\nexit\n"
    assert case.asm_line == 4
    assert case.raw is None
    assert case.prog_type == "socket_filter" and case.prog_type_number == 1
    assert case.verdict == "reject" and case.error == "R0 !read_ok" and case.errno == "EACCES"
    assert case.expected == v.Outcome("reject", "R0 !read_ok", "EACCES")
    assert case.name == "sample"


def test_parse_all_sections() -> None:
    text = """\
-- raw
0x0000000000000195  # exit with dst=r1
0x5566778800000018
0x1122334400000000
-- prog_type
cgroup_skb
-- attach_type
cgroup_inet_egress
-- prog_flags
strict_alignment | 4
-- maps
# index 0
array key_size=4 value_size=8 max_entries=1
hash key_size=8 value_size=16 max_entries=10 flags=no_prealloc|rdonly_prog name=counts
-- verdict
accept
"""
    case = v.parse_case(text, "x.case")
    assert case.raw == bytes.fromhex("9501000000000000" "1800000088776655" "0000000044332211")
    assert case.attach_type == "cgroup_inet_egress" and case.attach_type_number == 1
    assert case.prog_flags == ("strict_alignment", "4") and case.prog_flags_value == 5
    assert case.maps == (
        v.MapSpec("array", 4, 8, 1),
        v.MapSpec("hash", 8, 16, 10, ("no_prealloc", "rdonly_prog"), "counts"),
    )
    assert case.maps[1].flags_value == 1 | 128 and case.maps[1].map_type_number == 1
    assert case.expected == v.Outcome("accept")


def test_error_section_is_verbatim() -> None:
    text = "-- asm\ncall 999\nexit\n-- prog_type\nxdp\n-- verdict\nreject\n-- error\ninvalid func unknown#999\n"
    assert v.parse_case(text).error == "invalid func unknown#999"


def test_crlf_and_missing_final_newline() -> None:
    text = SAMPLE.replace("\n", "\r\n").rstrip("\r\n")
    case = v.parse_case(text)
    assert case.errno == "EACCES" and case.error == "R0 !read_ok"


def test_unrecorded_case_has_no_expectation() -> None:
    case = v.parse_case("-- asm\nexit\n-- prog_type\nxdp\n")
    assert case.verdict is None and case.expected is None


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("hello\n-- asm\nexit\n-- prog_type\nxdp\n", 1, "must be '#' comments"),
        ("-- asm\nexit\n-- prog_typ\nxdp\n", 3, "unknown section 'prog_typ'"),
        ("-- asm\nexit\n--prog_type\nxdp\n", 3, "malformed section header"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- asm\nexit\n", 5, "appears twice (first at line 1)"),
        ("-- asm\nexit\n-- prog_type\nxdp\nkprobe\n", 5, "takes one line"),
        ("-- asm\nexit\n-- prog_type\nnot_a_type\n", 4, "unknown program type 'not_a_type'"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- verdict\nmaybe\n", 6, "verdict must be"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- verdict\naccept\n-- error\nR0 !read_ok\n", 7,
         "belongs to a 'reject' verdict"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- maps\narray key_size=4 value_size=8\n", 6, "needs max_entries"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- maps\narray key_size=4 value_size=x max_entries=1\n", 6,
         "value_size: 'x' is not a number"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- maps\nnope key_size=4 value_size=4 max_entries=1\n", 6,
         "unknown map type 'nope'"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- maps\narray key_size=4 value_size=4 max_entries=1 colour=red\n",
         6, "unknown map field 'colour'"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- prog_flags\nstrict_alignment fast\n", 6,
         "unknown program flag 'fast'"),
        ("-- raw\n0x95\n0x1ffffffffffffffff\n-- prog_type\nxdp\n", 3, "does not fit in 64"),
        ("-- asm\nexit\n-- raw\n0x95\n-- prog_type\nxdp\n", 3, "not both"),
        ("-- asm\n# nothing\n-- prog_type\nxdp\n", 1, "section 'asm' is empty"),
        ("-- asm\nexit\n-- prog_type\nxdp\n-- verdict\nreject\n-- errno\nENOTANERRNO\n", 8, "unknown errno"),
        ("-- asm\nexit\n-- prog_type\n\n", 3, "section 'prog_type' is empty"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(v.CaseFormatError) as info:
        v.parse_case(text, "bad.case")
    err = info.value
    assert isinstance(err, InputFileError) and isinstance(err, UserInputError)
    assert err.path == "bad.case" and err.line == line, str(err)
    assert message in err.message
    assert str(err).startswith(f"bad.case:{line}: ")


@pytest.mark.parametrize(
    "text, message",
    [
        ("-- prog_type\nxdp\n", "no program"),
        ("-- asm\nexit\n", "missing section 'prog_type'"),
    ],
)
def test_whole_file_errors(text: str, message: str) -> None:
    with pytest.raises(v.CaseFormatError) as info:
        v.parse_case(text, "bad.case")
    assert info.value.line is None and message in info.value.message
    assert str(info.value).startswith("bad.case: ")


def test_load_case_reports_undecodable_line(tmp_path) -> None:
    path = tmp_path / "bin.case"
    path.write_bytes(b"-- asm\nexit\n-- prog_type\nxdp\xff\n")
    with pytest.raises(v.CaseFormatError) as info:
        v.load_case(path)
    assert info.value.line == 4 and "UTF-8" in info.value.message


def test_load_case_missing_file(tmp_path) -> None:
    with pytest.raises(v.CaseFormatError) as info:
        v.load_case(tmp_path / "nope.case")
    assert info.value.path.endswith("nope.case")


# --- writing -----------------------------------------------------------------


def test_format_round_trip_of_sample() -> None:
    case = v.parse_case(SAMPLE)
    text = v.format_case(case)
    assert v.parse_case(text) == case
    assert v.format_case(v.parse_case(text)) == text


def test_update_verdict_keeps_other_bytes() -> None:
    # Comments, odd spacing and CRLF in the untouched sections must survive.
    text = ("# desc\r\n-- asm\r\nmov %r0, 0   # zero\r\n\r\nexit\r\n-- prog_type\r\n# the type\r\nxdp\r\n"
            "-- verdict\r\n# recorded\r\naccept\r\n\r\n-- maps\r\narray key_size=4 value_size=4 max_entries=1\r\n")
    new = v.update_verdict(text, v.Outcome("reject", "R0 !read_ok", "EACCES"))
    assert new == ("# desc\r\n-- asm\r\nmov %r0, 0   # zero\r\n\r\nexit\r\n-- prog_type\r\n# the type\r\nxdp\r\n"
                   "-- verdict\r\n# recorded\r\nreject\r\n\r\n-- error\nR0 !read_ok\n-- errno\nEACCES\n"
                   "-- maps\r\narray key_size=4 value_size=4 max_entries=1\r\n")
    # And back: the error sections go, everything else is as before.
    assert v.update_verdict(new, v.Outcome("accept")) == text


def test_trailing_comments_in_value_sections() -> None:
    text = "-- asm\nexit\n-- prog_type\nxdp  # the type\n-- verdict\nreject   # was accept before 6.18\n" \
           "-- error\nR0 !read_ok # not a comment\n-- errno\nEACCES # permission\n"
    case = v.parse_case(text)
    assert (case.prog_type, case.verdict, case.errno) == ("xdp", "reject", "EACCES")
    assert case.error == "R0 !read_ok # not a comment"
    new = v.update_verdict(text, v.Outcome("reject", "R1 !read_ok", "EINVAL"))
    assert new == "-- asm\nexit\n-- prog_type\nxdp  # the type\n-- verdict\nreject   # was accept before 6.18\n" \
                  "-- error\nR1 !read_ok\n-- errno\nEINVAL # permission\n"


def test_update_verdict_is_identity_when_unchanged() -> None:
    assert v.update_verdict(SAMPLE, v.Outcome("reject", "R0 !read_ok", "EACCES")) == SAMPLE


def test_update_verdict_appends_when_unrecorded() -> None:
    text = "-- asm\nexit\n-- prog_type\nxdp"  # no final newline
    new = v.update_verdict(text, v.Outcome("reject", "R0 !read_ok", "EACCES"))
    assert new == text + "\n-- verdict\nreject\n-- error\nR0 !read_ok\n-- errno\nEACCES\n"
    assert v.parse_case(new).expected == v.Outcome("reject", "R0 !read_ok", "EACCES")


def test_update_verdict_inserts_errno_after_error() -> None:
    text = "-- asm\nexit\n-- prog_type\nxdp\n-- verdict\nreject\n-- error\nold\n# trailing comment\n"
    new = v.update_verdict(text, v.Outcome("reject", "new", "EINVAL"))
    assert new == "-- asm\nexit\n-- prog_type\nxdp\n-- verdict\nreject\n-- error\nnew\n# trailing comment\n" \
                  "-- errno\nEINVAL\n"


def test_update_verdict_reject_without_log() -> None:
    new = v.update_verdict(SAMPLE, v.Outcome("reject", None, "EINVAL"))
    case = v.parse_case(new)
    assert case.error is None and case.errno == "EINVAL"


def test_write_atomically_keeps_mode(tmp_path) -> None:
    path = tmp_path / "a.case"
    path.write_text("old")
    os.chmod(path, 0o640)
    v.write_atomically(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["a.case"]  # no temp file left behind


def test_iter_case_files(tmp_path) -> None:
    for name in ("b.case", "a.case", "notes.txt"):
        (tmp_path / name).write_text("")
    assert v.iter_case_files([tmp_path]) == [str(tmp_path / "a.case"), str(tmp_path / "b.case")]
    assert v.iter_case_files([]) == v.iter_case_files([v.CORPUS_DIR])


# --- building programs -----------------------------------------------------------


def test_build_program_map_references() -> None:
    case = v.parse_case("-- asm\nlddw %r1, map_fd 1\nlddw %r2, map_value 0, 4\nmov %r0, 0\nexit\n"
                        "-- prog_type\nsocket_filter\n-- maps\narray key_size=4 value_size=8 max_entries=1\n"
                        "hash key_size=4 value_size=8 max_entries=1\n")
    insns = v.build_program(case)
    # lddw src=1 imm=map index 1; lddw src=2 imm=map index 0, second slot imm=offset 4
    assert insns[:16] == bytes.fromhex("1811000001000000" "0000000000000000")
    assert insns[16:32] == bytes.fromhex("1822000000000000" "0000000004000000")


def test_build_program_raw() -> None:
    case = v.parse_case("-- raw\n0xb7\n0x95\n-- prog_type\nxdp\n")
    assert v.build_program(case) == bytes.fromhex("b700000000000000" "9500000000000000")


def test_build_error_names_the_file_line() -> None:
    text = "# desc\n-- asm\nmov %r0, 0\nfrobnicate %r1\nexit\n-- prog_type\nxdp\n"
    with pytest.raises(v.CaseBuildError) as info:
        v.build_program(v.parse_case(text, "b.case"))
    assert info.value.path == "b.case" and info.value.line == 4, str(info.value)


def test_build_error_for_undeclared_map() -> None:
    case = v.parse_case("-- asm\nlddw %r1, map_fd 0\nmov %r0, 0\nexit\n-- prog_type\nxdp\n", "m.case")
    with pytest.raises(v.CaseBuildError) as info:
        v.build_program(case)
    assert "map index 0 but the case declares 0 map(s)" in str(info.value)


# --- property tests --------------------------------------------------------------

_word = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
_line = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30)
_map = st.builds(
    v.MapSpec,
    map_type=st.sampled_from(["array", "hash", "percpu_array", "ringbuf", "7"]),
    key_size=st.integers(0, 2**32 - 1),
    value_size=st.integers(0, 2**32 - 1),
    max_entries=st.integers(0, 2**32 - 1),
    flags=st.lists(st.sampled_from(sorted(v.MAP_FLAG_BITS) + ["4096"]), max_size=3).map(tuple),
    name=st.one_of(st.just(""), _word),
)


@st.composite
def _cases(draw) -> v.Case:
    use_raw = draw(st.booleans())
    asm = raw = None
    if use_raw:
        raw = draw(st.binary(min_size=1, max_size=8).map(lambda b: b * 8))
    else:
        body = draw(st.lists(st.sampled_from(["mov %r0, 0", "exit", "# comment", "", "ja +0", "lbl:"]),
                             max_size=6))
        asm = "\n".join(["exit", *body]) + "\n"
    verdict = draw(st.sampled_from([None, "accept", "reject"]))
    error = errno_ = None
    if verdict == "reject":
        error = draw(st.one_of(st.none(), _line.map(str.strip).filter(lambda s: bool(s)).filter(
            lambda s: not s.startswith("--"))))
        errno_ = draw(st.sampled_from([None, "EACCES", "EINVAL", "E2BIG", "22"]))
    description = draw(st.lists(_line.map(lambda s: s.strip()), max_size=3))
    return v.Case(
        prog_type=draw(st.sampled_from(["socket_filter", "xdp", "kprobe", "sched_cls", "99"])),
        asm=asm,
        raw=raw,
        description="\n".join(description),
        attach_type=draw(st.sampled_from([None, "cgroup_inet_ingress", "3"])),
        prog_flags=tuple(draw(st.lists(st.sampled_from(sorted(v.PROG_FLAG_BITS) + ["256"]), max_size=3))),
        maps=tuple(draw(st.lists(_map, max_size=3))),
        verdict=verdict,
        error=error,
        errno=errno_,
    )


@given(_cases())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_format_parse_round_trip(case: v.Case) -> None:
    text = v.format_case(case)
    assert v.parse_case(text) == case
    # The recorder's rewrite of a canonical file to its own outcome changes nothing,
    # and rewriting to another outcome and back restores every byte.
    outcome = case.expected or v.Outcome("accept")
    canonical = v.update_verdict(text, outcome)
    assert v.parse_case(canonical).expected == outcome
    assert v.update_verdict(canonical, outcome) == canonical
    other = v.Outcome("reject", "R1 type=scalar expected=fp", "EACCES")
    assert v.update_verdict(v.update_verdict(canonical, other), outcome) == canonical


_SECTION_LINES = [f"-- {name}" for name in v.SECTIONS] + [
    "exit", "mov %r0, 0", "socket_filter", "xdp", "accept", "reject", "R0 !read_ok", "EACCES", "# note", "",
    "array key_size=4 value_size=8 max_entries=1", "0x95", "strict_alignment", "--", "-- bogus", "12", "x=y",
]


@given(st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(_SECTION_LINES), _line), max_size=25).map("\n".join),
))
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_random_text_parses_or_raises_case_format_error(text: str) -> None:
    try:
        case = v.parse_case(text, "fuzz.case")
    except v.CaseFormatError as err:
        assert err.path == "fuzz.case"
        assert err.line is None or 1 <= err.line <= text.count("\n") + 1
        return
    # Whatever parses survives rewriting its verdict.
    new = v.update_verdict(text, v.Outcome("reject", "R0 !read_ok", "EACCES"))
    again = v.parse_case(new, "fuzz.case")
    assert again.expected == v.Outcome("reject", "R0 !read_ok", "EACCES")
    assert again.asm == case.asm or (case.asm is not None and again.asm.rstrip("\n") == case.asm.rstrip("\n"))
    assert v.parse_case(v.format_case(case)) == case
