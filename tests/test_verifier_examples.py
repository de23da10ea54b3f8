"""Every program of every example object gets the kernel's verdict from ebpfvm.verifier.

The kernel half needs bpf(2) (skipped without it); the verdicts ebpfvm gives
are also pinned without a kernel: every example program is accepted (the
kernel accepts them all, see test_examples_kernel.py).  Includes the
map-in-map case: the value of an array_of_maps/hash_of_maps lookup is, after
its NULL check, a map pointer to the inner map (kernel: inner_map_meta).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ebpfvm.asm import assemble
from ebpfvm.elf import load_object
from ebpfvm.maps.definition import MapDefinition
from ebpfvm.program import Program
from ebpfvm.verifier import verify

from kernel_support import require_kernel

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
OBJECTS = sorted(EXAMPLES.glob("*.o"))


def _ours(obj):
    return {p.name: verify(p, prog_type=p.prog_type, expected_attach_type=p.expected_attach_type) for p in obj.programs}


@pytest.mark.parametrize("path", OBJECTS, ids=[p.stem for p in OBJECTS])
def test_examples_are_accepted(path: Path) -> None:
    ours = _ours(load_object(str(path)))
    rejected = {name: r.error for name, r in ours.items() if not r.accepted}
    assert not rejected


@pytest.mark.parametrize("path", OBJECTS, ids=[p.stem for p in OBJECTS])
def test_examples_match_the_kernel(path: Path) -> None:
    require_kernel()
    from ebpfvm.kernel.objects import verify_object_in_kernel

    obj = load_object(str(path))
    kernel = verify_object_in_kernel(obj)
    ours = _ours(obj)
    rows = []
    for name, verdict in kernel.items():
        if verdict.skipped:
            continue
        mine = ours[name]
        if mine.accepted != verdict.accepted:
            rows.append(f"{path.name} {name}: kernel {'accept' if verdict.accepted else 'reject'} "
                        f"({verdict.error_line}), ebpfvm {mine.verdict} ({mine.error and mine.error.message})")
    print("\n".join(rows) or f"{path.name}: all {len(kernel)} verdicts agree")
    assert not rows, "\n".join(rows)


OUTER = MapDefinition("outer", "array_of_maps", 4, 4, 2,
                      inner=MapDefinition("outer.inner", "array", 4, 8, 1))
LOOKUP_OUTER = """
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
"""
LOOKUP_INNER = """
    mov %r1, %r0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxdw %r0, [%r0+0]
out:
    mov %r0, 0
    exit
"""


def _verify(text: str):
    return verify(Program(assemble(text).instructions, prog_type="xdp", maps=(OUTER,)), prog_type="xdp")


def test_map_in_map_value_is_the_inner_map_after_the_null_check() -> None:
    result = _verify(LOOKUP_OUTER + "    jeq %r0, 0, out\n" + LOOKUP_INNER)
    assert result.accepted, result.error


def test_map_in_map_value_needs_the_null_check() -> None:
    result = _verify(LOOKUP_OUTER + LOOKUP_INNER)
    assert not result.accepted and result.error.message == "R1 type=map_value_or_null expected=map_ptr"


def test_inner_map_pointer_is_not_writable_memory() -> None:
    result = _verify(LOOKUP_OUTER + "    jeq %r0, 0, out\n    stdw [%r0+0], 1\nout:\n    mov %r0, 0\n    exit\n")
    assert not result.accepted


def test_verifier_benchmark_reports_every_example_program() -> None:
    from benchmarks.verifier_speed import measure, table

    rows = measure(1)
    assert len(rows) == sum(len(load_object(str(p)).programs) for p in OBJECTS)
    assert all(r["verdict"] == "accept" and r["us"] < 1e6 for r in rows)
    assert table(rows).count("\n") == len(rows) + 1
