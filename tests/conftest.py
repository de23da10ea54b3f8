"""Shared pytest configuration: hypothesis profiles.

``ci`` (the default) keeps example counts modest and has no deadline, since
kernel round trips fork a child per example; ``EBPFVM_HYPOTHESIS_PROFILE=deep``
runs many more for local fuzzing sessions.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# benchmarks/ is not part of the installed package, but tests reuse its
# workloads. Appended, not prepended, so `ebpfvm` still comes from the install.
sys.path.append(str(Path(__file__).resolve().parents[1]))

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", deadline=None, max_examples=5000,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("EBPFVM_HYPOTHESIS_PROFILE", "ci"))
