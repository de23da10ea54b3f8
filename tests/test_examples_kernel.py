"""The example objects in the live kernel (skipped without one).

Every program of every example must pass the kernel's verifier when loaded
the way ebpfvm.kernel.objects loads objects (maps created from the
MapDefinitions, global data initialised, .rodata frozen, map indices
relocated, BTF func/line info attached); and each run in
tests/example_runs.py (worked out by hand, see examples/README.md) must give
the listed return value, maps and packet under BPF_PROG_TEST_RUN.
Everything that touches the kernel happens in a forked child.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ebpfvm.elf import load_object
from ebpfvm.kernel.objects import test_run_in_kernel, verify_object_in_kernel

from example_runs import EXAMPLE_RUNS, EXAMPLES, checksum
from kernel_support import require_kernel

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Example -> its programs (all of which the kernel must accept).
EXPECTED_PROGRAMS = {
    "xdp_firewall": ["xdp_firewall"],
    "tc_rewrite": ["tc_rewrite"],
    "socket_filter": ["dns_only"],
    "kprobe_counter": ["count_unlinkat"],
    "global_data": ["score_packet"],
    "tail_calls": ["handle_ipv4", "handle_ipv6", "dispatch"],
    "loop_sum": ["sum_squares"],
    "map_in_map": ["count_by_protocol"],
}


def test_every_example_is_listed() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.c")) == sorted(EXPECTED_PROGRAMS)
    assert sorted(p.stem for p in EXAMPLES.glob("*.o")) == sorted(EXPECTED_PROGRAMS)


@pytest.mark.kernel
@pytest.mark.parametrize("example", sorted(EXPECTED_PROGRAMS))
def test_kernel_accepts_every_program(example: str) -> None:
    require_kernel()
    obj = load_object(EXAMPLES / f"{example}.o")
    verdicts = verify_object_in_kernel(obj)
    assert list(verdicts) == EXPECTED_PROGRAMS[example]
    for verdict in verdicts.values():
        assert verdict.accepted, f"{verdict.name}: {verdict.error_line}\n{verdict.log_tail}"
        assert verdict.btf_loaded  # loaded with the object's BTF, func_info and line_info
        assert verdict.stats is not None and verdict.stats.insns_processed > 0


@pytest.mark.kernel
@pytest.mark.parametrize("fixture", ["multi_prog", "legacy_maps"])
def test_kernel_accepts_loader_fixtures(fixture: str) -> None:
    require_kernel()
    obj = load_object(FIXTURES / f"{fixture}.o")
    verdicts = verify_object_in_kernel(obj)
    assert len(verdicts) == len(obj.programs)
    assert all(v.accepted for v in verdicts.values()), verdicts
    assert all(v.btf_loaded == (obj.btf is not None) for v in verdicts.values())


@pytest.mark.kernel
def test_core_program_is_not_offered_to_the_kernel() -> None:
    require_kernel()
    verdict = verify_object_in_kernel(load_object(FIXTURES / "core_read.o"))["read_task"]
    assert verdict.skipped and not verdict.accepted
    assert "CO-RE" in verdict.error_line


@pytest.mark.kernel
@pytest.mark.parametrize("run", EXAMPLE_RUNS, ids=lambda r: r.id)
def test_example_run_matches_hand_computed_result(run) -> None:  # type: ignore[no-untyped-def]
    require_kernel()
    obj = load_object(run.path)
    result = test_run_in_kernel(obj, run.program, run.packet, map_setup=run.map_setup)
    assert result.retval == run.retval
    expected_packet = run.packet if run.packet_out is None else run.packet_out
    if obj.program(run.program).prog_type != "socket_filter":  # socket filters get a zeroed L2 header back
        assert result.packet_out == expected_packet
    for map_name, entries in run.maps.items():
        contents = result.maps[map_name]
        assert contents is not None
        for key, value in entries.items():
            assert contents.get(key) == value, f"{map_name}[{key.hex()}]"


@pytest.mark.kernel
def test_rewritten_packet_checksums_verify() -> None:
    """Independently of the expected bytes: the IP header and the TCP
    segment (with its pseudo header) of tc_rewrite's output sum to zero."""
    require_kernel()
    run = next(r for r in EXAMPLE_RUNS if r.id == "rewrite-match")
    out = test_run_in_kernel(load_object(run.path), run.program, run.packet).packet_out
    ip, segment = out[14:34], out[34:]
    assert checksum(ip) == 0
    pseudo = ip[12:20] + bytes([0, 6]) + len(segment).to_bytes(2, "big")
    assert checksum(pseudo + segment) == 0
    assert ip[16:20] == bytes([10, 0, 0, 2]) and segment[2:4] == (8080).to_bytes(2, "big")
