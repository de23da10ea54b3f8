"""Reading the kernel verifier's log text.

Pure functions over strings, so they are tested without a kernel.  The
statistics lines the kernel appends (always ``processed ...``; with
log_level bit 4 also ``verification time ...`` and ``stack depth ...``)
look like::

    verification time 5 usec
    stack depth 0+8
    processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PROCESSED = re.compile(
    r"^processed (?P<insns>\d+) insns \(limit (?P<limit>\d+)\)"
    r"(?: max_states_per_insn (?P<max_states>\d+))?"
    r"(?: total_states (?P<total>\d+))?"
    r"(?: peak_states (?P<peak>\d+))?"
    r"(?: mark_read (?P<mark_read>\d+))?",
    re.MULTILINE,
)
_VERIFICATION_TIME = re.compile(r"^verification time (\d+) usec\s*$", re.MULTILINE)
# One number per subprogram joined by '+': "stack depth 16+0+8".
_STACK_DEPTH = re.compile(r"^stack depth (\d+(?:\+\d+)*)\s*$", re.MULTILINE)

# Lines that are statistics or bookkeeping rather than the kernel's verdict;
# last_error_line skips them when looking for the message.
_NOT_AN_ERROR = re.compile(
    r"^(?:processed \d+ insns \(limit \d+\)"
    r"|verification time \d+ usec"
    r"|stack depth \d+(?:\+\d+)*"
    r"|max_states_per_insn \d+"
    r")"
)


@dataclass(frozen=True)
class VerifierStats:
    """The verifier's summary of one load.

    Fields missing from an older or newer kernel's format are None (e.g.
    ``mark_read``, which kernels may drop); ``stack_depth`` has one entry per
    subprogram and is empty unless log_level had the stats bit (4).
    """

    insns_processed: int
    insn_limit: int
    max_states_per_insn: int | None = None
    total_states: int | None = None
    peak_states: int | None = None
    mark_read: int | None = None
    verification_time_usec: int | None = None
    stack_depth: tuple[int, ...] = ()


def _opt_int(text: str | None) -> int | None:
    return int(text) if text is not None else None


def parse_stats(log: str) -> VerifierStats | None:
    """The statistics in ``log``, or None if it has no ``processed`` line.

    When a log holds several loads' output the last of each line wins, which
    matches the kernel appending its summary at the end.
    """
    processed = list(_PROCESSED.finditer(log))
    if not processed:
        return None
    m = processed[-1]
    times = _VERIFICATION_TIME.findall(log)
    depths = _STACK_DEPTH.findall(log)
    return VerifierStats(
        insns_processed=int(m["insns"]),
        insn_limit=int(m["limit"]),
        max_states_per_insn=_opt_int(m["max_states"]),
        total_states=_opt_int(m["total"]),
        peak_states=_opt_int(m["peak"]),
        mark_read=_opt_int(m["mark_read"]),
        verification_time_usec=int(times[-1]) if times else None,
        stack_depth=tuple(int(d) for d in depths[-1].split("+")) if depths else (),
    )


# Two quirks of 6.18's logs: some messages end without a newline, so the
# statistics line that follows is glued on ("expected prog array map for tail
# call" + "verification time 35 usec"); and "infinite loop detected at insn N"
# is followed by dumps of the two equal states.
_GLUED_STATS = re.compile(r"(?<=\S)(?=(?:verification time \d+ usec|processed \d+ insns \(limit \d+\)))")
_STATE_DUMP = re.compile(r"^(?:cur|old) state: ")


def last_error_line(log: str) -> str:
    """The kernel's message in a rejection log (``R0 !read_ok``): the last
    non-empty line that is not a statistics line or a state dump.  ``""`` for
    an empty log.

    On a successful load this is simply the last traced line, so call it only
    for rejected programs.
    """
    for line in reversed(_GLUED_STATS.sub("\n", log).splitlines()):
        if _STATE_DUMP.match(line):
            continue
        text = line.strip()
        if text and not _NOT_AN_ERROR.match(text):
            return text
    return ""
