"""Conformance cases: the ``.data`` format, a runner over engines, and our own corpus.

``cases/`` holds our corpus (one program per ``.data`` file, written for this
project, not copied from anywhere); the runner takes the public
bpf_conformance suite just as well.
"""

from __future__ import annotations

from pathlib import Path

from .dataformat import ConformanceCase, DataFormatError, load_case, parse_case
from .runner import (ALL_ENGINES, Availability, CaseResult, Engine, EngineSkip, InterpreterEngine, Stage, Status,
                     UnknownEngine, conformance_command, engine_names, expand_paths, register_engine, run_case,
                     run_file, run_paths, summary_line)

# Our corpus ships as package data beside this file.
CASES_DIR = Path(__file__).resolve().parent / "cases"

__all__ = [
    "ALL_ENGINES", "Availability", "CASES_DIR", "CaseResult", "ConformanceCase", "DataFormatError", "Engine",
    "EngineSkip", "InterpreterEngine", "Stage", "Status", "UnknownEngine", "conformance_command", "engine_names",
    "expand_paths", "load_case", "parse_case", "register_engine", "run_case", "run_file", "run_paths",
    "summary_line",
]
