"""Where the public bpf_conformance suite is: ``shared/`` beside the checkout
(CI clones the repository elsewhere with a copy of shared/ next to it).
Tests that use it skip, naming this path, when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "bpf_conformance"

needs_shared_suite = pytest.mark.skipif(not (SHARED_SUITE / "tests").is_dir(),
                                        reason=f"bpf_conformance suite not found at {SHARED_SUITE} "
                                               "(expected shared/ beside the checkout)")


def suite_files(folder: str) -> list[Path]:
    """The ``.data`` files of ``tests`` or ``negative`` (empty when absent)."""
    return sorted((SHARED_SUITE / folder).glob("*.data"))
