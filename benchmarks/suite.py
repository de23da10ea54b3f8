"""The comparison benchmark (issue 6): every workload of
``programs.COMPARE_WORKLOADS`` on every engine, in one process run.

    python -m benchmarks                   # = python -m benchmarks compare
    python -m benchmarks compare [--quick] [--no-record] [--plot PATH]

What is timed, per workload (all engines get the identical input memory and
must return the workload's expected r0 -- checked before a time is kept):

* interp   -- ``Interpreter(program).run(mem)``, best of a few; executed
              instructions come from this run.
* checked / trusted -- the llvmlite JIT: ``run_many`` over R copies of the
              memory (R rows totalling ~1 MiB, so they stay in cache),
              called C times; time / (R * C).  One ctypes call per R runs
              (~2 us, i.e. <= ~16 ns per run for the 8 KiB rows); rows are
              prepared beforehand and re-run in place (every program leaves
              its memory so the next run computes the same r0).
* kernel   -- the program wrapped by ``wrap_for_kernel`` (r1 = map value
              holding the memory, r2 = len, r0 stored to a map), loaded as XDP
              and run with BPF_PROG_TEST_RUN ``repeat``; the kernel's own
              duration per run (its JIT; includes the wrapper's 6 instructions
              and the test-run loop's per-repeat overhead).
* native   -- the C version (``native/<name>.c``, ``gcc -O2 -shared -fPIC``),
              called through ctypes as ``bench(mem, len, iters)``: a C loop
              calling a non-inlined ``run`` ``iters`` times with a compiler
              barrier between calls; time / iters.

Ratios: trusted/native, checked/native and trusted/kernel (< 1 = JIT faster).
Then JIT compile time by program size (``jit_speed.synthetic``) and
``run_many`` throughput for a trivial program.
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ebpfvm.interp import Interpreter

from .programs import COMPARE_WORKLOADS, Workload

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


def time_native(dll: ctypes.CDLL, mem: bytes, expected: int, target: float) -> float:
    buf = ctypes.create_string_buffer(mem, max(1, len(mem)))
    addr, n = ctypes.addressof(buf), len(mem)
    got = dll.run(addr, n)
    if got != expected:
        raise AssertionError(f"native r0 {got:#x} != expected {expected:#x}")
    iters = 1
    while True:
        start = time.perf_counter()
        acc = dll.bench(addr, n, iters)
        elapsed = time.perf_counter() - start
        if elapsed >= target / 4 or iters >= 1 << 30:
            break
        iters *= 4
    best = elapsed
    for _ in range(2):
        start = time.perf_counter()
        acc = dll.bench(addr, n, iters)
        best = min(best, time.perf_counter() - start)
    if acc != (expected * iters) & ((1 << 64) - 1):
        raise AssertionError("native bench loop computed a different r0")
    return best / iters * 1e9


# -- kernel ------------------------------------------------------------------------------

def kernel_reason() -> str | None:
    """None when bpf(2) works here, else why the kernel column is skipped."""
    try:
        from ebpfvm import kernel
        avail = kernel.available()
    except Exception as exc:  # pragma: no cover - depends on the host
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


def time_kernel(w: Workload, target: float) -> tuple[float | None, str | None]:
    """Kernel ns per run (its own BPF_PROG_TEST_RUN duration), or a reason."""
    ns, why = _kernel_outcome(w, 100)
    if ns is None:
        return None, why
    repeat = int(min(1_000_000, max(100, target * 1e9 / max(ns, 1))))
    ns, why = _kernel_outcome(w, repeat)
    return (float(ns), None) if ns is not None else (None, why)


# -- interpreter and JIT -----------------------------------------------------------------

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


def time_jit(w: Workload, mode: str, target: float) -> tuple[float, float]:
    """(ns per run through run_many, compile seconds)."""
    from ebpfvm.jit import compile
    from ebpfvm.jit.engine import clear_cache
    clear_cache()
    jit = compile(w.program, mode=mode)
    got = jit.run(w.mem, budget=BUDGET).r0
    if got != w.expected_r0:
        raise AssertionError(f"JIT {mode} r0 {got:#x} != expected {w.expected_r0:#x}")
    row = np.frombuffer(w.mem or b"\0", dtype=np.uint8)
    # Rows totalling about 1 MiB, so that they stay in cache like the single
    # buffer the kernel and native runs reuse; run_many is called repeatedly.
    count = max(8, min(4096, (1 << 20) // len(row)))
    rows = np.tile(row, (count, 1))
    out = jit.run_many(rows, budget=BUDGET)
    if not (out == np.uint64(w.expected_r0)).all():
        raise AssertionError(f"JIT {mode} run_many gave a different r0")
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            jit.run_many(rows, budget=BUDGET)
        elapsed = time.perf_counter() - start
        if elapsed >= target / 4 or calls >= 1 << 20:
            break
        calls *= 4
    best = elapsed
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(calls):
            out = jit.run_many(rows, budget=BUDGET)
        best = min(best, time.perf_counter() - start)
    if not (out == np.uint64(w.expected_r0)).all():
        raise AssertionError(f"JIT {mode} run_many gave a different r0 on a repeated run")
    count *= calls
    return best / count * 1e9, jit.compile_seconds


# -- the run -----------------------------------------------------------------------------

ENGINES = ("interp", "checked", "trusted", "kernel", "native")


def measure(names: list[str], target: float, log=print) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    skipped: list[str] = []
    kreason = kernel_reason()
    if kreason:
        skipped.append(f"kernel column: {kreason}")
    cc = gcc_path()
    if cc is None:
        skipped.append("native column: gcc not found (set CC or install gcc)")
    with tempfile.TemporaryDirectory(prefix="ebpfvm-bench-") as tmp:
        for name in names:
            w = COMPARE_WORKLOADS[name]()
            row = Row(name)
            log(f"  {name} ...", end="", flush=True)
            row.ns["interp"], row.executed = time_interp(w, target)
            for mode in ("checked", "trusted"):
                row.ns[mode], _ = time_jit(w, mode, target)
            if kreason is None:
                row.ns["kernel"], why = time_kernel(w, target)
                if why:
                    row.notes.append(why)
            if cc is not None:
                try:
                    row.ns["native"] = time_native(build_native(w.native, Path(tmp)), w.mem, w.expected_r0,
                                                   target)
                except (subprocess.CalledProcessError, OSError, AssertionError) as exc:
                    row.notes.append(f"native: {getattr(exc, 'stderr', '') or exc}")
            log(" done")
            rows.append(row)
    return rows, skipped


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def _ns(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def results_table(rows: list[Row]) -> list[str]:
    lines = ["| program | executed insns | interp ns | JIT checked ns | JIT trusted ns | kernel ns | native C ns "
             "| trusted / native | checked / native | trusted / kernel |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ns = r.ns
        lines.append(f"| {r.name} | {r.executed:,} | {_ns(ns.get('interp'))} | {_ns(ns.get('checked'))} | "
                     f"{_ns(ns.get('trusted'))} | {_ns(ns.get('kernel'))} | {_ns(ns.get('native'))} | "
                     f"{_ratio(ns.get('trusted'), ns.get('native'))} | {_ratio(ns.get('checked'), ns.get('native'))} | "
                     f"{_ratio(ns.get('trusted'), ns.get('kernel'))} |")
    return lines


def compile_table(sizes: tuple[int, ...]) -> list[str]:
    from ebpfvm.jit import compile
    from ebpfvm.jit.engine import clear_cache

    from .jit_speed import synthetic
    lines = ["| program size (insns) | compile ms, checked | compile ms, trusted |", "| ---: | ---: | ---: |"]
    for n in sizes:
        program = synthetic(n)
        out = []
        for mode in ("checked", "trusted"):
            clear_cache()
            start = time.perf_counter()
            compile(program, mode=mode)
            out.append((time.perf_counter() - start) * 1e3)
        lines.append(f"| {n:,} | {out[0]:.1f} | {out[1]:.1f} |")
    return lines


def run_many_line(count: int) -> str:
    from ebpfvm.interp import build as b
    from ebpfvm.jit import compile
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
    gcc = subprocess.run([cc, "-dumpfullversion"], capture_output=True, text=True).stdout.strip() if cc else "none"
    return (f"{datetime.date.today()}, Python {platform.python_version()}, llvmlite {llvmlite.__version__}, "
            f"gcc {gcc}, Linux {platform.release()}, {cpu}, {os.cpu_count()} CPUs")


def plot(rows: list[Row], path: Path) -> str | None:
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
        ax.bar(xs, [r.ns.get(engine) or 0 for r in rows], width, label=engine)
    ax.set_xticks([i + width * (len(engines) - 1) / 2 for i in range(len(rows))], [r.name for r in rows])
    ax.set_yscale("log")
    ax.set_ylabel("ns per run (log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
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
    target = 0.05 if args.quick else 0.25
    env = environment()
    print(f"# {env}")
    print("measuring:")
    rows, skipped = measure(names, target)
    out = ["### Per program (ns per run; ratios < 1 mean the JIT is faster)", "", *results_table(rows), ""]
    notes = [f"- {r.name}: {n}" for r in rows for n in r.notes] + [f"- skipped {s}" for s in skipped]
    if notes:
        out += ["Notes:", "", *notes, ""]
    print("compile times ...", flush=True)
    sizes = (100, 1_000) if args.quick else (100, 1_000, 10_000)
    out += ["### JIT compile time (lowering + LLVM O2 + MCJIT, `jit_speed.synthetic` programs)", "",
            *compile_table(sizes), "", run_many_line(1_000_000 if args.quick else 4_000_000), ""]
    text = "\n".join(out)
    print()
    print(text)
    png = plot(rows, args.plot or Path(tempfile.gettempdir()) / "ebpfvm-bench.png")
    print(f"plot: {png}" if png else "plot: skipped (matplotlib not installed)")
    if not args.no_record and not args.workloads:
        cmd = "python -m benchmarks" + (" --quick" if args.quick else "")
        record(f"## Comparison: interpreter, JIT, kernel, native C (last run of `{cmd}`)\n\n"
               f"Measured {env}.\n\n{text}")
        print(f"recorded in {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
