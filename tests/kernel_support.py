"""Kernel availability for tests that need the live bpf(2) syscall.

Not a conftest: import ``kernel`` (fixture) or call ``require_kernel()``.
Without a usable kernel those tests are skipped with the reason, unless
EBPFVM_REQUIRE_KERNEL=1, where a missing kernel is a failure (CI on a
machine that must have one should not silently skip the oracle).
"""

from __future__ import annotations

import os

import pytest

from ebpfvm.kernel import Availability, available


def kernel_required() -> bool:
    return os.environ.get("EBPFVM_REQUIRE_KERNEL", "") == "1"


def require_kernel() -> Availability:
    """Skip (or fail, under EBPFVM_REQUIRE_KERNEL=1) unless bpf(2) works."""
    status = available()
    if not status:
        if kernel_required():
            pytest.fail(f"EBPFVM_REQUIRE_KERNEL=1 but kernel eBPF is unavailable: {status.reason}")
        pytest.skip(f"kernel eBPF unavailable: {status.reason}")
    return status


@pytest.fixture
def kernel() -> Availability:
    return require_kernel()
