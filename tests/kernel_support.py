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


def object_kernel_log(obj, program: str, level: int) -> str:  # type: ignore[no-untyped-def]
    """The kernel's verifier log for ``program`` of ELF object ``obj`` (the
    log of a rejection too)."""
    from ebpfvm.kernel.errors import KernelVerifierError
    from ebpfvm.kernel.objects import open_object
    with open_object(obj) as loaded:
        try:
            return loaded.load(program, log_level=level).log
        except KernelVerifierError as exc:
            return exc.log


def comparable_log(log: str) -> str:
    """A verifier log with what differs by nature between the kernel's and
    ours made equal: the verification time, and a map load printed as the
    map's kernel address by the kernel and as ``map[fd:N]...`` by us (both
    become ``MAP``, with the alignment they imply)."""
    import re
    log = re.sub(r"verification time \d+ usec", "verification time N usec", log)
    address = r"(0x[0-9a-f]{16}|map\[fd:\d+\](\[\d+\]\+\d+)?)"
    log = re.sub(rf"\(18\) (r\d+) = {address} *;", r"(18) \1 = MAP ;", log)
    return re.sub(rf"\(18\) (r\d+) = {address}$", r"(18) \1 = MAP", log, flags=re.MULTILINE)
