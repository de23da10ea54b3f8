"""clang's own code (``fixtures/real_world.c``: packet parsing, bounded loops,
maps, atomics, ring buffers, bpf_loop, and the usual mistakes): the verdict,
error line and processed-instruction count the 6.18 kernel gives each
program, pinned here, and compared with the live kernel when it is here."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_support import require_kernel

from ebpfvm.elf import load_object
from ebpfvm.verifier import verify

FIXTURE = Path(__file__).parent / "fixtures" / "real_world.o"

# program -> (verdict, error line, processed insns), as the kernel reports them
KERNEL = {
    "count_udp_ports": ("accept", None, 52),
    "udp_unchecked": ("reject", "R2 offset is outside of the packet", 15),
    "report": ("accept", None, 18),
    "report_leak": ("reject", "BPF_EXIT instruction in main prog would lead to reference leak", 9),
    "sum_bytes": ("accept", None, 653),
    "lookup_unchecked": ("reject", "R0 invalid mem access 'map_value_or_null'", 9),
    "count_by_class": ("accept", None, 14),
    "loop_total": ("accept", None, 44),
    "half_bounded_index": ("reject", "value -2147483648 makes fp pointer be out of bounds", 11),
    "bounded_index": ("accept", None, 12),
}


@pytest.fixture(scope="module")
def obj():  # type: ignore[no-untyped-def]
    return load_object(str(FIXTURE))


def test_every_program_is_pinned(obj) -> None:  # type: ignore[no-untyped-def]
    assert sorted(p.name for p in obj.programs) == sorted(KERNEL)


@pytest.mark.parametrize("name", sorted(KERNEL))
def test_kernel_verdict_line_and_count(obj, name: str) -> None:  # type: ignore[no-untyped-def]
    result = verify(obj.program(name))
    got = (result.verdict, result.error.message if result.error else None, result.stats["processed_insns"])
    assert got == KERNEL[name]


def test_the_live_kernel_agrees(obj) -> None:  # type: ignore[no-untyped-def]
    require_kernel()
    from ebpfvm.kernel.objects import verify_object_in_kernel
    for name, verdict in verify_object_in_kernel(obj).items():
        want = ("accept" if verdict.accepted else "reject", verdict.error_line or None,
                verdict.stats.insns_processed)
        assert want == KERNEL[name], name
