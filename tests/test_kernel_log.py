"""Verifier log parsing (no kernel needed); the texts are as Linux 6.18 writes them."""

from __future__ import annotations

import pytest

from ebpfvm.kernel.log import VerifierStats, last_error_line, parse_stats

REJECTED_LEVEL1 = """\
0: R1=ctx() R10=fp0
0: (95) exit
R0 !read_ok
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""

REJECTED_WITH_STATS = """\
func#0 @0
Live regs before insn:
      0: 0......... (95) exit
0: R1=ctx() R10=fp0
0: (95) exit
R0 !read_ok
verification time 6 usec
stack depth 0
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""

ACCEPTED_STATS_ONLY = """\
verification time 17 usec
stack depth 0
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""

PACKET_TWO_LINE_ERROR = """\
0: R1=ctx() R10=fp0
0: (61) r2 = *(u32 *)(r1 +0)          ; R1=ctx() R2_w=pkt(r=0)
1: (71) r0 = *(u8 *)(r2 +0)
invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)
R2 offset is outside of the packet
verification time 31 usec
stack depth 0
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""

SUBPROGS = """\
func#0 @0
func#1 @5
from 4 to 5: R1=1 R10=fp0
5: (b7) r0 = 1                        ; R0_w=1
6: (95) exit
verification time 120 usec
stack depth 16+8
processed 57 insns (limit 1000000) max_states_per_insn 3 total_states 12 peak_states 11 mark_read 4
"""

TOO_LARGE = """\
BPF program is too large. Processed 1000001 insn
verification time 2512034 usec
stack depth 0
processed 1000001 insns (limit 1000000) max_states_per_insn 4 total_states 100012 peak_states 4400 mark_read 3
"""

# A kernel that no longer reports mark_read (the format is not ABI).
NO_MARK_READ = """\
R0 !read_ok
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0
"""

# The tail of a rotating log that had to be cut (first line partial).
TRUNCATED_TAIL = """\
=fp0
0: (95) exit
R0 !read_ok
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""


def test_stats_of_level1_rejection() -> None:
    assert parse_stats(REJECTED_LEVEL1) == VerifierStats(
        insns_processed=1, insn_limit=1_000_000, max_states_per_insn=0,
        total_states=0, peak_states=0, mark_read=0,
    )


def test_stats_with_time_and_stack_depth() -> None:
    stats = parse_stats(REJECTED_WITH_STATS)
    assert stats is not None
    assert stats.verification_time_usec == 6
    assert stats.stack_depth == (0,)
    assert stats.insns_processed == 1


def test_stats_of_subprograms() -> None:
    stats = parse_stats(SUBPROGS)
    assert stats == VerifierStats(57, 1_000_000, 3, 12, 11, 4, 120, (16, 8))


def test_stats_of_too_large_program() -> None:
    stats = parse_stats(TOO_LARGE)
    assert stats is not None
    assert stats.insns_processed == 1_000_001
    assert stats.verification_time_usec == 2_512_034
    assert stats.total_states == 100012 and stats.peak_states == 4400


def test_missing_fields_are_none() -> None:
    stats = parse_stats(NO_MARK_READ)
    assert stats is not None
    assert stats.mark_read is None
    assert stats.peak_states == 0
    assert stats.verification_time_usec is None
    assert stats.stack_depth == ()


@pytest.mark.parametrize("text", ["", "R0 !read_ok\n", "0: (95) exit\n"])
def test_no_stats(text: str) -> None:
    assert parse_stats(text) is None


def test_stats_are_frozen_ints() -> None:
    stats = parse_stats(ACCEPTED_STATS_ONLY)
    assert stats is not None
    assert isinstance(stats.insns_processed, int)
    with pytest.raises(AttributeError):
        stats.insns_processed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("log", "line"),
    [
        (REJECTED_LEVEL1, "R0 !read_ok"),
        (REJECTED_WITH_STATS, "R0 !read_ok"),
        (PACKET_TWO_LINE_ERROR, "R2 offset is outside of the packet"),
        (TOO_LARGE, "BPF program is too large. Processed 1000001 insn"),
        (NO_MARK_READ, "R0 !read_ok"),
        (TRUNCATED_TAIL, "R0 !read_ok"),
        ("", ""),
        (ACCEPTED_STATS_ONLY, ""),
        ("unreachable insn 1\n\n\n", "unreachable insn 1"),
        ("last line without newline", "last line without newline"),
    ],
)
def test_last_error_line(log: str, line: str) -> None:
    assert last_error_line(log) == line


def test_error_line_undoes_log_quirks():
    glued = "3: (85) call bpf_tail_call#12\nexpected prog array map for tail callverification time 35 usec\n" \
            "stack depth 0\nprocessed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0\n"
    assert last_error_line(glued) == "expected prog array map for tail call"
    loop = "infinite loop detected at insn 1\ncur state: R0=0 R1=ctx() R10=fp0\n" \
           "old state: R0=0 R1=ctx() R10=fp0\nverification time 46 usec\nstack depth 0\n" \
           "processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n"
    assert last_error_line(loop) == "infinite loop detected at insn 1"
    assert last_error_line("0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000)\n") == "R0 !read_ok"
    assert last_error_line("") == ""
