"""The comparison benchmark (issue 6): every workload of
``programs.COMPARE_WORKLOADS`` on every engine, in one process run.

    python -m benchmarks                   # = python -m benchmarks compare
    python -m benchmarks compare [--quick] [--no-record] [--plot PATH]

Every engine runs the workload the same way: the same program (BPF or its C
twin) again and again on one buffer holding the same input memory (every
workload leaves its memory so that the next run computes the same r0), and
every r0 is checked against the workload's independently computed value
before a time counts.

* interp   -- ``Interpreter(program).run(mem)``, best of a few; executed
              instructions come from this run.
* checked / trusted -- the llvmlite JIT: ``run_many`` over n rows that all
              alias one copy of the memory (``repeat_rows``, row stride 0):
              n runs of the inlined program in one native call; r0s written
              into a preallocated array.
* native   -- the C version (``native/<name>.c``, ``gcc -O2 -shared -fPIC``):
              ``bench(mem, len, n)``, a C loop calling the non-inlined ``run``
              n times with a compiler barrier between calls.
* kernel   -- the program wrapped by ``wrap_for_kernel`` (r1 = map value
              holding the memory, r2 = len, r0 stored to a map), loaded as XDP
              and run with BPF_PROG_TEST_RUN ``repeat``; the kernel's own
              duration per run, the fastest of ``KERNEL_TRIALS`` loads.

Timing (JIT and native): trials of ``TRIAL_SECONDS`` (n calibrated per
engine), taken in turn (checked, trusted, native, checked, ...) until each
engine had ~``target`` seconds; the fastest trial counts. The host is shared
with other work: load only ever adds time, so the minimum is the estimate.

Floor: the empty program (``programs.empty``, ``native/empty.c``) is measured
the same way first; its ns per run -- the harness's per-run cost (C call and
loop; ``run_many``'s row loop; the kernel's test-run loop, tens of ns;
checked mode's 512-byte frame clear; the interpreter's set-up) -- is
subtracted from every workload's time on that engine. The table shows the
floor row and, for trusted / kernel, the ratio of the raw times as well.

Ratios: trusted/native, checked/native and trusted/kernel (< 1 = JIT faster).
Then JIT compile time by program size (``jit_speed.synthetic``) and
``run_many`` throughput for a trivial program over 8-byte rows.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ebpfvm.interp import Interpreter

from .programs import COMPARE_WORKLOADS, Workload
from .programs import empty as FLOOR_WORKLOAD

HERE = Path(__file__).resolve().parent
NATIVE_DIR = HERE / "native"
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"
BUDGET = 100_000_000


@dataclass
class Row:
    name: str
    executed: int = 0
    ns: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, float | None] = field(default_factory=dict)  # before the floor was subtracted


# -- native ------------------------------------------------------------------------------

_BENCH_WRAPPER = """
#include <stdint.h>
uint64_t run(uint8_t *mem, uint64_t len) __attribute__((noinline));
#include "{source}"
uint64_t bench(uint8_t *mem, uint64_t len, uint64_t iters)
{{
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {{
        __asm__ volatile("" ::: "memory");
        acc += run(mem, len);
    }}
    return acc;
}}
"""


def gcc_path() -> str | None:
    return shutil.which(os.environ.get("CC", "gcc"))


def build_native(source: str, workdir: Path) -> ctypes.CDLL:
    """Compile ``native/<source>`` plus a ``bench`` loop into a shared object."""
    cc = gcc_path()
    if cc is None:
        raise RuntimeError("gcc not found")
    stem = Path(source).stem
    wrapper = workdir / f"{stem}_bench.c"
    wrapper.write_text(_BENCH_WRAPPER.format(source=NATIVE_DIR / source))
    lib = workdir / f"lib{stem}.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(wrapper)], check=True,
                   capture_output=True, text=True)
    dll = ctypes.CDLL(str(lib))
    for fn in (dll.run, dll.bench):
        fn.restype = ctypes.c_uint64
    dll.run.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    dll.bench.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
    return dll


def native_run(dll: ctypes.CDLL, mem: bytes) -> int:
    buf = ctypes.create_string_buffer(mem, max(1, len(mem)))
    return dll.run(ctypes.addressof(buf), len(mem))


Trial = Callable[[int], float]  # n runs in one native call -> seconds


def native_trial(dll: ctypes.CDLL, mem: bytes, expected: int) -> Trial:
    """``bench(mem, len, n)``: a C loop calling the non-inlined ``run`` n times."""
    buf = ctypes.create_string_buffer(mem, max(1, len(mem)))
    addr, size = ctypes.addressof(buf), len(mem)
    got = dll.run(addr, size)
    if got != expected:
        raise AssertionError(f"native r0 {got:#x} != expected {expected:#x}")

    def trial(n: int) -> float:
        start = time.perf_counter()
        acc = dll.bench(addr, size, n)
        elapsed = time.perf_counter() - start
        if acc != (expected * n) & ((1 << 64) - 1):
            raise AssertionError("native bench loop computed a different r0")
        return elapsed
    trial.buffer = buf  # type: ignore[attr-defined]  # keeps the memory alive as long as the trial
    return trial


def jit_trial(w: Workload, mode: str) -> Trial:
    """``run_many`` over n rows that all alias one copy of the memory (row
    stride 0): n runs on the same buffer in one native call, like ``bench``."""
    from ebpfvm.jit import compile
    from ebpfvm.jit.engine import clear_cache
    from ebpfvm.jit.runtime import repeat_rows
    clear_cache()
    jit = compile(w.program, mode=mode)
    got = jit.run(w.mem, budget=BUDGET).r0
    if got != w.expected_r0:
        raise AssertionError(f"JIT {mode} r0 {got:#x} != expected {w.expected_r0:#x}")
    buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def trial(n: int) -> float:
        if n not in buffers:  # rows and r0s allocated (and paged in) outside the timing; one size kept
            buffers.clear()
            buffers[n] = repeat_rows(w.mem, n), np.ones(n, dtype=np.uint64)
        batch, out = buffers[n]
        start = time.perf_counter()
        jit.run_many(batch, budget=BUDGET, out=out)
        elapsed = time.perf_counter() - start
        if not (out == np.uint64(w.expected_r0)).all():
            raise AssertionError(f"JIT {mode} run_many gave a different r0")
        return elapsed
    return trial


# One timed call: long enough to hide the ~5 us Python/ctypes call, short enough
# to fit between the scheduler's preemptions on a loaded host.
TRIAL_SECONDS = 0.001


def _runs_per_trial(trial: Trial) -> int:
    n, elapsed = 1, trial(1)
    while elapsed < TRIAL_SECONDS and n < 1 << 26:
        n = min(1 << 26, max(2 * n, int(n * 1.2 * TRIAL_SECONDS / max(elapsed, 1e-7))))
        elapsed = trial(n)
    return n


def best_per_run(trials: dict[str, Trial], target: float) -> dict[str, float]:
    """Seconds per run for each engine: ``TRIAL_SECONDS``-long trials taken in
    turn (engine A, B, C, A, B, C, ...) until each had about ``target``
    seconds, and the fastest trial of each counted. The host is shared: load
    from elsewhere only ever adds time, so the minimum is the estimate, and
    interleaving exposes every engine to the same load."""
    sizes = {name: _runs_per_trial(trial) for name, trial in trials.items()}
    best = {name: float("inf") for name in trials}
    spent = 0.0
    while spent < target:
        for name, trial in trials.items():
            elapsed = trial(sizes[name])
            best[name] = min(best[name], elapsed / sizes[name])
            spent += elapsed / len(trials)
    return best


# -- kernel ------------------------------------------------------------------------------

def kernel_reason() -> str | None:
    """None when bpf(2) works here, else why the kernel column is skipped."""
    try:
        from ebpfvm import kernel
        avail = kernel.available()
    except Exception as exc:  # noqa: BLE001 - any failure to probe bpf(2) only skips the column
        return f"kernel bridge unavailable: {exc}"
    return None if avail else f"no kernel: {getattr(avail, 'reason', avail)}"


def _kernel_outcome(w: Workload, repeat: int):
    from ebpfvm.kernel import Accepted, MapSpec, Rejected, load_and_run_isolated
    from ebpfvm.kernel.execute import _PACKET, wrap_for_kernel
    value_size = max(8, len(w.mem))
    maps = (MapSpec("array", 4, value_size, 1, initial=((bytes(4), w.mem.ljust(value_size, b"\0")),)),
            MapSpec("array", 4, 8, 1))
    wrapped = wrap_for_kernel(w.program, len(w.mem))
    out = load_and_run_isolated(wrapped.to_bytes(), "xdp", _PACKET, maps=maps, repeat=repeat,
                                log_level=0, stats=False, timeout=60)
    if isinstance(out, Rejected):
        return None, f"kernel rejected the wrapped program: {out.error_line or out.errno}"
    if not isinstance(out, Accepted):
        return None, f"kernel run crashed: {out.detail or out.signal}"
    if out.run_errno is not None:
        return None, f"BPF_PROG_TEST_RUN failed with errno {out.run_errno}"
    r0 = int.from_bytes(out.maps[1].get(bytes(4), bytes(8)), "little")
    if r0 != w.expected_r0:
        return None, f"kernel r0 {r0:#x} != expected {w.expected_r0:#x}"
    return out.duration_ns, None


KERNEL_TRIALS = 3


def time_kernel(w: Workload, target: float) -> tuple[float | None, str | None]:
    """Kernel ns per run (its own BPF_PROG_TEST_RUN duration, an average over
    ``repeat`` runs), the fastest of ``KERNEL_TRIALS`` loads; or a reason."""
    ns, why = _kernel_outcome(w, 100)
    if ns is None:
        return None, why
    repeat = int(min(1_000_000, max(100, target / KERNEL_TRIALS * 1e9 / max(ns, 1))))
    best = None
    for _ in range(KERNEL_TRIALS):
        ns, why = _kernel_outcome(w, repeat)
        if ns is None:
            return None, why
        best = ns if best is None else min(best, ns)
    return float(best), None


# -- interpreter -------------------------------------------------------------------------

def time_interp(w: Workload, target: float) -> tuple[float, int]:
    interp = Interpreter(w.program)
    best, executed, spent = float("inf"), 0, 0.0
    for _ in range(5):
        start = time.perf_counter()
        res = interp.run(w.mem, budget=BUDGET)
        elapsed = time.perf_counter() - start
        if res.r0 != w.expected_r0:
            raise AssertionError(f"interpreter r0 {res.r0:#x} != expected {w.expected_r0:#x}")
        best, executed, spent = min(best, elapsed), res.executed, spent + elapsed
        if spent > target:
            break
    return best * 1e9, executed


# -- the run -----------------------------------------------------------------------------

ENGINES = ("interp", "checked", "trusted", "kernel", "native")


def measure_one(w: Workload, target: float, kernel: bool, native_dir: Path | None) -> Row:
    """Raw ns per run of ``w`` on every available engine."""
    row = Row(w.name)
    row.ns["interp"], row.executed = time_interp(w, target)
    trials = {mode: jit_trial(w, mode) for mode in ("checked", "trusted")}
    if native_dir is not None:
        try:
            trials["native"] = native_trial(build_native(w.native, native_dir), w.mem, w.expected_r0)
        except (subprocess.CalledProcessError, OSError, AssertionError) as exc:
            row.notes.append(f"native: {getattr(exc, 'stderr', '') or exc}")
    row.ns.update({name: seconds * 1e9 for name, seconds in best_per_run(trials, target).items()})
    if kernel:
        row.ns["kernel"], why = time_kernel(w, target)
        if why:
            row.notes.append(why)
    return row


def net_of(row: Row, floor: Row) -> Row:
    """``row`` with each engine's floor (the empty program's ns) subtracted."""
    net = Row(row.name, row.executed, notes=list(row.notes), raw=dict(row.ns))
    for engine, ns in row.ns.items():
        base = floor.ns.get(engine)
        net.ns[engine] = ns - base if ns is not None and base is not None and ns > base else ns
    return net


def measure(names: list[str], target: float, log=print) -> tuple[Row, list[Row], list[str]]:
    """(the floor row: raw ns of the empty program, the workloads' rows with
    the floor subtracted, skipped columns)."""
    skipped: list[str] = []
    kreason = kernel_reason()
    if kreason:
        skipped.append(f"kernel column: {kreason}")
    if gcc_path() is None:
        skipped.append("native column: gcc not found (set CC or install gcc)")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ebpfvm-bench-") as tmp:
        native_dir = Path(tmp) if gcc_path() is not None else None
        floor: Row | None = None
        for w in [FLOOR_WORKLOAD(), *(COMPARE_WORKLOADS[name]() for name in names)]:
            log(f"  {w.name} ...", end="", flush=True)
            row = measure_one(w, target, kreason is None, native_dir)
            log(" done")
            if floor is None:
                floor = row
            else:
                rows.append(net_of(row, floor))
    assert floor is not None
    return floor, rows, skipped


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def _ns(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def results_table(rows: list[Row], floor: Row | None = None) -> list[str]:
    """Markdown rows: ``floor`` first (raw ns; its ratios blank), then ``rows``
    (ns with the floor subtracted); the last column divides the raw times."""
    lines = [("| program | executed insns | interp ns | JIT checked ns | JIT trusted ns | kernel ns | native C ns "
              "| trusted / native | checked / native | trusted / kernel | trusted / kernel, raw |"),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in ([floor] if floor is not None else []) + rows:
        ns, is_floor = r.ns, r is floor
        cells = [_ns(ns.get(e)) for e in ("interp", "checked", "trusted", "kernel", "native")]
        ratios = ["-"] * 4 if is_floor else [
            _ratio(ns.get("trusted"), ns.get("native")), _ratio(ns.get("checked"), ns.get("native")),
            _ratio(ns.get("trusted"), ns.get("kernel")),
            _ratio(r.raw.get("trusted"), r.raw.get("kernel")) if r.raw else "-"]
        name = f"{r.name} (floor, subtracted below)" if is_floor else r.name
        lines.append(f"| {name} | {r.executed:,} | " + " | ".join(cells + ratios) + " |")
    return lines


def compile_table(sizes: tuple[int, ...]) -> list[str]:
    """Best of 5 (one run at 10,000 instructions), with the tier each program got."""
    from .jit_speed import compile_time, synthetic
    lines = ["| program size (insns) | compile ms, checked | compile ms, trusted | tier |",
             "| ---: | ---: | ---: | :--- |"]
    for n in sizes:
        program = synthetic(n)
        repeat = 5 if n < 10_000 else 1
        checked, trusted = (compile_time(program, mode, repeat=repeat) for mode in ("checked", "trusted"))
        lines.append(f"| {n:,} | {checked.total * 1e3:.1f} | {trusted.total * 1e3:.1f} | {trusted.tier} |")
    return lines


def run_many_line(count: int) -> str:
    from ebpfvm.jit import compile

    from ebpfvm.interp import build as b
    from ebpfvm.program import Program
    jit = compile(Program([b.mov64_imm(0, 1), b.exit_insn()]), mode="trusted")
    rows = np.zeros((count, 8), dtype=np.uint8)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        jit.run_many(rows)
        best = min(best, time.perf_counter() - start)
    return (f"run_many, `mov r0, 1; exit`, trusted: {count / best / 1e6:.1f} M runs/s "
            f"({best / count * 1e9:.1f} ns/run, {count:,} rows of 8 bytes)")


def environment() -> str:
    import llvmlite
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cc = gcc_path()
    gcc = subprocess.run([cc, "-dumpfullversion"], capture_output=True, text=True, check=False).stdout.strip() if cc else "none"
    return (f"{datetime.date.today()}, Python {platform.python_version()}, llvmlite {llvmlite.__version__}, "
            f"gcc {gcc}, Linux {platform.release()}, {cpu}, {os.cpu_count()} CPUs")


ENGINE_LABELS = {"interp": "interpreter", "checked": "JIT checked", "trusted": "JIT trusted",
                 "kernel": "kernel JIT", "native": "gcc -O2"}


def plot(rows: list[Row], path: Path, title: str = "") -> str | None:
    """A grouped bar chart (ns per run, log scale) of ``rows`` as a PNG at
    ``path``; None when matplotlib is not installed (the ``plot`` extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    engines = [e for e in ENGINES if any(r.ns.get(e) for r in rows)]
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(1, len(engines))
    for k, engine in enumerate(engines):
        xs = [i + k * width for i in range(len(rows))]
        ax.bar(xs, [r.ns.get(engine) or float("nan") for r in rows], width, label=ENGINE_LABELS[engine])
    ax.set_xticks([i + width * (len(engines) - 1) / 2 for i in range(len(rows))], [r.name for r in rows])
    ax.set_yscale("log")
    ax.set_ylabel("ns per run (log scale)")
    ax.set_title(title or "ns per run by engine (lower is faster)")
    ax.grid(axis="y", which="major", alpha=0.3)
    # Below the axis, so that no bar hides behind it.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=len(engines), frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return str(path)


def record(text: str) -> None:
    """Replace the marked section of RESULTS.md (or append it)."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", default=[],
                        help=f"subset of workloads (default: all): {', '.join(COMPARE_WORKLOADS)}")
    parser.add_argument("--quick", action="store_true", help="shorter timings, compile sizes up to 1,000")
    parser.add_argument("--no-record", action="store_true", help="do not update benchmarks/RESULTS.md")
    parser.add_argument("--plot", type=Path, default=None,
                        help="PNG path (default: a file in the temp dir; needs matplotlib)")
    args = parser.parse_args(argv)
    names = args.workloads or list(COMPARE_WORKLOADS)
    unknown = [n for n in names if n not in COMPARE_WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(COMPARE_WORKLOADS)}")
    target = 0.05 if args.quick else 0.5  # seconds of trials per engine and workload
    env = environment()
    print(f"# {env}")
    print("measuring:")
    floor, rows, skipped = measure(names, target)
    out = ["### Per program (ns per run, each engine's floor subtracted; ratios < 1 mean the JIT is faster)", "",
           *results_table(rows, floor), ""]
    notes = [f"- {r.name}: {n}" for r in rows for n in r.notes] + [f"- skipped {s}" for s in skipped]
    if notes:
        out += ["Notes:", "", *notes, ""]
    print("compile times ...", flush=True)
    sizes = (100, 1_000) if args.quick else (100, 1_000, 10_000)
    out += ["### JIT compile time (lowering + LLVM + MCJIT at the size's tier, `jit_speed.synthetic` programs)", "",
            *compile_table(sizes), "", run_many_line(1_000_000 if args.quick else 4_000_000), ""]
    text = "\n".join(out)
    print()
    print(text)
    png = plot(rows, args.plot or Path(tempfile.gettempdir()) / "ebpfvm-bench.png",
               "ns per run, each engine's empty-program floor subtracted (lower is faster)")
    print(f"plot: {png}" if png else "plot: skipped (matplotlib not installed)")
    if not args.no_record and not args.workloads:
        cmd = "python -m benchmarks" + (" --quick" if args.quick else "")
        record(f"## Comparison: interpreter, JIT, kernel, native C (last run of `{cmd}`)\n\n"
               f"Measured {env}.\n\n{text}")
        print(f"recorded in {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
