"""The comparison benchmark without timing anything: each BPF program returns
its expected r0 on the interpreter, the C version in benchmarks/native/
returns the same r0 on the same input when gcc is here; the JIT runs a
program repeatedly on one buffer the way the suite times it; trials are
calibrated and the fastest kept; the floor is subtracted per engine; the PNG
chart is written."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from ebpfvm.jit import compile
from ebpfvm.jit.runtime import repeat_rows

from benchmarks.programs import COMPARE_WORKLOADS, Workload, empty
from benchmarks.suite import (
    TRIAL_SECONDS,
    Row,
    best_per_run,
    build_native,
    gcc_path,
    jit_trial,
    native_run,
    native_trial,
    net_of,
    plot,
    results_table,
)
from ebpfvm.asm import assemble
from ebpfvm.interp import Interpreter

WORKLOADS = {**COMPARE_WORKLOADS, "empty": empty}  # empty: the per-run floor
NAMES = sorted(WORKLOADS)


@pytest.mark.parametrize("name", NAMES)
def test_interpreter_gives_expected_r0(name):
    w = WORKLOADS[name]()
    res = Interpreter(w.program).run(w.mem, budget=10_000_000)
    assert res.r0 == w.expected_r0
    # Running again on the memory the run left gives the same r0 (repeat runs
    # in the kernel and the JIT's in-place run_many rely on it).
    again = Interpreter(w.program).run(res.mem, budget=10_000_000)
    assert again.r0 == w.expected_r0


@pytest.mark.skipif(gcc_path() is None, reason="gcc not installed")
@pytest.mark.parametrize("name", NAMES)
def test_native_matches(name, tmp_path):
    w = WORKLOADS[name]()
    assert w.native
    assert native_run(build_native(w.native, tmp_path), w.mem) == w.expected_r0


# -- how the comparison times the JIT: n runs on one buffer in one native call ------------

COUNTING = "ldxdw %r0, [%r1+0]\nadd %r0, 1\nstxdw [%r1+0], %r0\nexit"  # r0 = ++*(u64 *)mem


@pytest.mark.parametrize("mode", ["checked", "trusted"])
def test_run_many_on_aliased_rows_runs_on_the_same_memory(mode):
    jit = compile(assemble(COUNTING), mode=mode)
    rows = repeat_rows((5).to_bytes(8, "little"), 4)
    # Each run sees what the previous one left, as a C loop over one buffer would.
    assert jit.run_many(rows).tolist() == [6, 7, 8, 9]
    assert int.from_bytes(rows[0].tobytes(), "little") == 9


def test_run_many_writes_into_a_given_out_array():
    jit = compile(assemble(COUNTING), mode="trusted")
    rows = np.zeros((3, 8), dtype=np.uint8)
    rows[:, 0] = [1, 2, 3]
    out = np.full(3, 99, dtype=np.uint64)
    assert jit.run_many(rows, out=out) is out
    assert out.tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match="out must be"):
        jit.run_many(rows, out=np.zeros(2, dtype=np.uint64))
    with pytest.raises(ValueError, match="contiguous rows"):
        jit.run_many(np.zeros((3, 16), dtype=np.uint8)[:, ::2])


def test_trials_check_r0_and_count_runs(tmp_path):
    w = COMPARE_WORKLOADS["xdp-parse"]()
    assert jit_trial(w, "trusted")(3) > 0
    bad = dataclasses.replace(w, expected_r0=w.expected_r0 ^ 1)
    with pytest.raises(AssertionError, match="JIT trusted r0"):
        jit_trial(bad, "trusted")
    # Right on a fresh copy, wrong when run again on the memory it left: caught.
    counting = Workload("counting", "", assemble(COUNTING), bytes(8), 1)
    assert jit_trial(counting, "trusted")(1) > 0
    with pytest.raises(AssertionError, match="run_many gave a different r0"):
        jit_trial(counting, "trusted")(2)
    if gcc_path() is not None:
        dll = build_native(w.native, tmp_path)
        assert native_trial(dll, w.mem, w.expected_r0)(3) > 0
        with pytest.raises(AssertionError, match="native r0"):
            native_trial(dll, w.mem, bad.expected_r0)


def test_best_per_run_keeps_the_fastest_trial():
    # A fake engine: 2 us per run, with every other trial slowed down by "load".
    calls = []

    def trial(n):
        calls.append(n)
        return n * 2e-6 * (3 if len(calls) % 2 else 1)

    best = best_per_run({"fake": trial}, target=0.01)
    assert best["fake"] == pytest.approx(2e-6)
    assert len(calls) > 4 and min(calls[2:]) * 2e-6 * 3 >= TRIAL_SECONDS  # calibrated to the trial length


def test_floor_is_subtracted_per_engine_and_raw_ratio_kept():
    floor = Row("empty", 2, ns={"trusted": 2.0, "kernel": 30.0, "native": 5.0})
    row = net_of(Row("p", 100, ns={"trusted": 102.0, "kernel": 130.0, "native": 85.0}), floor)
    assert row.ns == {"trusted": 100.0, "kernel": 100.0, "native": 80.0}
    lines = results_table([row], floor)
    assert lines[2].startswith("| empty (floor, subtracted below) | 2 |") and lines[2].endswith("| - | - | - | - |")
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[0] == "p" and cells[4:7] == ["100", "100", "80.0"]
    assert cells[7] == "1.25" and cells[9] == "1.00" and cells[10] == "0.78"  # 102 / 130 raw


# -- the PNG chart (needs the optional ``plot`` extra: matplotlib) -------------------------------

def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (pip install '.[plot]')")
    rows = [Row("sieve", 43229, ns={"interp": 3.9e6, "checked": 14592.0, "trusted": 1883.0, "kernel": 3477.0,
                                    "native": 1670.0}),
            Row("xdp-parse", 1720, ns={"interp": 2.2e5, "checked": 712.0, "trusted": 95.0, "native": 75.0})]
    path = tmp_path / "bench.png"
    assert plot(rows, path, "test chart") == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1000, 500)  # figsize 10 x 5 inches at 100 dpi
    assert len(data) > 10_000  # bars, labels and legend drawn, not an empty canvas


# -- JIT code the comparison relies on -----------------------------------------------------

@pytest.mark.parametrize("mode", ["checked", "trusted"])
def test_jit_gives_expected_r0_on_every_workload(mode):
    for name, make in WORKLOADS.items():
        w = make()
        assert compile(w.program, mode=mode).run(w.mem, budget=10_000_000).r0 == w.expected_r0, name


FRAME_POINTERS = """
    mov %r1, 0
fill:                           # fp-64 .. fp-1 = 0 .. 63 through r10 + r1
    mov %r3, %r10
    add %r3, %r1
    stxb [%r3-64], %r1
    add %r1, 1
    jlt %r1, 64, fill
    mov %r1, 0x1205
    call local f
    mov %r3, %r10
    sub %r3, 32                 # r10 - const
    ldxb %r2, [%r3+3]           # fp-29 = 35
    lsh %r0, 8
    add %r0, %r2
    exit
f:                              # the callee's own frame, through derived pointers
    mov %r4, %r10
    add %r4, -16
    stxdw [%r4+0], %r1
    mov %r5, %r4
    and %r1, 7
    add %r5, %r1                # + register (5)
    ldxb %r0, [%r5-4]           # byte 1 of the stored 0x1205
    ldxdw %r2, [%r4+0]
    add %r0, %r2
    exit
"""


def test_trusted_frame_pointers_are_geps_from_the_frame():
    program = assemble(FRAME_POINTERS)
    expected = Interpreter(program).run(b"").r0
    assert expected == ((0x12 + 0x1205) << 8) + 35
    trusted = compile(program, mode="trusted")
    assert trusted.run().r0 == compile(program, mode="checked").run().r0 == expected
    # Every access is r10-derived: none goes through the stack-or-memory select.
    main = trusted.llvm_ir.split("define i64 @\"bpf_main\"", 1)[1].split("\n}", 1)[0]
    assert "select" not in main
