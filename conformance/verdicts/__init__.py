"""The verifier verdict corpus: ``conformance/verifier/*.case``.

One file per case.  Each is a small program, the context it is loaded in and
the verdict the live kernel's verifier gave it, in a sectioned text format in
the style of the conformance suite's ``.data`` files::

    # Reading r0 before anything wrote it: every register but r1 and r10
    # starts uninitialised.
    -- asm
    exit
    -- prog_type
    socket_filter
    -- verdict
    reject
    -- error
    R0 !read_ok
    -- errno
    EACCES

Format
======

* Lines before the first section are ``#`` comments (the description) or
  blank.  A section starts with a header line ``-- NAME``; its body runs to the
  next header.  Each section may appear once.  Sections:

  ``asm``
      the program in the assembler dialect of ``ebpfvm.asm`` (``#`` comments,
      labels).  Map references: ``lddw %r1, map_fd N`` loads the map declared
      N-th in ``maps`` (``BPF_PSEUDO_MAP_FD``); ``lddw %r1, map_value N, OFF``
      the address of byte OFF of its value (``BPF_PSEUDO_MAP_VALUE``).
  ``raw``
      instead of ``asm``, for what the assembler cannot express: one 8-byte
      slot per line as a 64-bit number whose low byte is the opcode (the
      ``.data`` files' ``-- raw`` convention), ``#`` comments allowed.  A
      map reference is an lddw with src 1 or 2 whose imm is the map's index.
  ``prog_type``
      libbpf's name for the program type (``socket_filter``, ``xdp``,
      ``sched_cls``, ``kprobe``...), or a number.
  ``attach_type`` (optional)
      the expected attach type, libbpf-style (``cgroup_inet_ingress``) or a number.
  ``prog_flags`` (optional)
      load flags separated by spaces or ``|``: ``strict_alignment``,
      ``any_alignment``, ``test_rnd_hi32``, ``test_state_freq``, ``sleepable``,
      ``xdp_has_frags``, ``xdp_dev_bound_only``, ``test_reg_invariants``, or numbers.
  ``maps`` (optional)
      one map per line, index = position from 0:
      ``array key_size=4 value_size=8 max_entries=1 [flags=no_prealloc|...] [name=NAME]``.
  ``verdict``
      ``accept`` or ``reject``: what the kernel said.  Written by the recorder;
      a case without one has not been recorded yet.
  ``error`` (rejects only)
      the kernel verifier log's error line, verbatim (no comment stripping).
  ``errno`` (rejects only)
      the errno of the failed load (``EACCES``, ``EINVAL``, ``E2BIG``...).

  Blank lines, ``#`` lines and trailing ``# comments`` are ignored in every
  section but ``error``, whose single line is taken as is (kernel messages
  contain ``#``: ``invalid func unknown#999999``).

The recorder rewrites only ``verdict``, ``error`` and ``errno``; every other
byte of the file stays as it was.

Public functions: ``parse_case``/``load_case``/``iter_case_files`` (reading),
``format_case`` (writing a whole case), ``update_verdict`` (in-place rewrite
of the recorded part), ``build_program`` (the bytes to load), and the two
command entry points ``record_command(paths, out)`` and
``check_command(paths, out)``.
"""

from __future__ import annotations

from .build import build_program
from .caseformat import (
    format_case,
    iter_case_files,
    load_case,
    load_corpus,
    parse_case,
    update_verdict,
    write_atomically,
)
from .commands import CheckResult, check_case_file, check_command, mismatch_table, record_case_file, record_command
from .kernel import CaseRunError, kernel_outcome
from .model import (
    ACCEPT,
    CASE_SUFFIX,
    CORPUS_DIR,
    MAP_FLAG_BITS,
    PROG_FLAG_BITS,
    RECORDED_SECTIONS,
    REJECT,
    SECTIONS,
    VERDICTS,
    Case,
    CaseBuildError,
    CaseFormatError,
    MapSpec,
    Outcome,
    errno_name,
)

__all__ = [
    "ACCEPT",
    "REJECT",
    "VERDICTS",
    "SECTIONS",
    "RECORDED_SECTIONS",
    "CASE_SUFFIX",
    "CORPUS_DIR",
    "PROG_FLAG_BITS",
    "MAP_FLAG_BITS",
    "CaseFormatError",
    "CaseBuildError",
    "MapSpec",
    "Case",
    "Outcome",
    "errno_name",
    "parse_case",
    "load_case",
    "iter_case_files",
    "load_corpus",
    "format_case",
    "update_verdict",
    "write_atomically",
    "build_program",
    "CaseRunError",
    "kernel_outcome",
    "CheckResult",
    "check_case_file",
    "mismatch_table",
    "record_case_file",
    "check_command",
    "record_command",
]
