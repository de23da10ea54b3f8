"""Native code generation: target machine, optimisation tiers, execution engine, cache.

Engine choice: **MCJIT**. One ``ExecutionEngine`` per process holds every
compiled program as its own object file: each module is optimised, turned
into object code with ``TargetMachine.emit_object`` on the target machine of
its tier (below), handed to the engine with ``add_object_file``, finalised
and its functions looked up with ``get_function_address``. MCJIT is the path
numba has exercised for years on llvmlite; it resolves the one external
symbol our code calls (the helper trampoline, registered with
``llvm.add_symbol``) without a JITDylib setup. LLJIT (ORC) would add
per-library resource tracking we do not need: compiled programs live as long
as the in-memory cache that keeps them, i.e. the process. Compiling to an
object ourselves (instead of ``add_module``, where the engine's own target
machine, fixed at creation, would generate code) lets each program pick its
code generator's optimisation level.

Target: the host CPU by name with its feature string (``get_host_cpu_name``,
``get_host_cpu_features``), PIC/JIT code model defaults.

Tiers (``choose_tier``), by the number of IR instructions the lowering
produced (what LLVM's compile time grows with) and whether the program loops
(the lowering marks such modules with the named metadata ``LOOPS_METADATA``):

- ``full``: LLVM's default ``O<n>`` module pipeline (new pass manager,
  ``PipelineTuningOptions(speed_level=opt_level)``) and code generation at
  ``O<n>``, for modules of up to ``FULL_TIER_IR`` instructions (every compute
  benchmark: < 700), for programs with loops (back edges, or bpf_loop /
  for_each callbacks) up to ``LIGHT_PIPELINE_SLOTS`` slots, and at
  ``opt_level=3`` for any program.
- ``light``: SCCP, simplifycfg and DCE, then LLVM's fast instruction
  selector and register allocator (code generation at O0), for larger
  loop-free programs. On the 1,000-instruction synthetic program the O2
  pipeline and O2 code generation were ~80% of the compile time. The code
  is slower -- forced on the compare workloads: xdp-parse 1.3-2x, the
  loop-heavy ones 7-27x (fast register allocation spills across blocks, no
  loop optimisation) -- which costs little where every instruction runs at
  most once per run, hence the loop rule.
- ``reduced``: instcombine, simplifycfg, NewGVN and DCE, code generation at
  ``O<n>``, for programs with loops over ``LIGHT_PIPELINE_SLOTS`` slots (the
  full pipeline would take seconds; their loops still get decent code).
- ``none`` (``opt_level=0``): no passes, code generation at O0.

Cache: compiled code is cached in memory by a key that stands for every
input of the lowering (``lowering.lowering_inputs``: program bytes, mode,
opt level, the resolved lddw pseudo values, the helpers and maps the code
depends on) -> ``Compiled`` (function addresses, the IR, what the lowering
reported; the optimised IR and the assembly are rebuilt on first use), so
conformance runs and property tests that meet the same program twice lower
and compile it once; and, opt-in (``EBPFVM_JIT_CACHE``), object code on disk
across processes, keyed by the IR text.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import llvmlite.binding as llvm

_lock = threading.Lock()
_state: dict[str, object] = {}


def _target_machine(opt_level: int) -> llvm.TargetMachine:
    key = f"tm{opt_level}"
    tm = _state.get(key)
    if tm is None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        tm = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                          features=llvm.get_host_cpu_features().flatten(),
                                          opt=min(max(opt_level, 0), 3), jit=True)
        _state[key] = tm
    return tm  # type: ignore[return-value]


def _engine() -> llvm.ExecutionEngine:
    ee = _state.get("ee")
    if ee is None:
        # The engine owns this target machine; it generates no code itself
        # (every program arrives as an object file), so any level will do.
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        tm = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                          features=llvm.get_host_cpu_features().flatten(), jit=True)
        backing = llvm.parse_assembly("")
        backing.triple = tm.triple
        ee = llvm.create_mcjit_compiler(backing, tm)
        _state["ee"] = ee
        _state["backing"] = backing
    return ee  # type: ignore[return-value]


def add_symbol(name: str, address: int) -> None:
    llvm.add_symbol(name, address)


@dataclass(frozen=True)
class Tier:
    """How much LLVM work one program gets."""

    name: str
    passes: tuple[str, ...] | None  # ``ModulePassManager.add_<name>_pass``; None = default O<n> pipeline
    codegen_level: int  # the target machine's optimisation level (0 = fast isel, fast regalloc)


# The lowering emits registers as SSA values (no allocas to promote); what is
# left for a cheap pipeline: constants propagated through the address
# translation and budget phis (SCCP), branches on them folded and blocks
# merged (simplifycfg), and what died with them (DCE). Instcombine or GVN
# would each cost more than all of these and code generation together.
LIGHT_TIER = Tier("light", ("sccp", "simplify_cfg", "dead_code_elimination"), 0)
NO_OPT_TIER = Tier("none", (), 0)
REDUCED_PASSES = ("instruction_combine", "simplify_cfg", "new_gvn", "dead_code_elimination")
# IR instructions up to which loop-free programs get the full pipeline at opt levels 1-2.
FULL_TIER_IR = 1024
# Named metadata the lowering adds to the modules of programs that loop.
LOOPS_METADATA = "ebpfvm.loops"


def ir_instructions(ir_text: str) -> int:
    """Instructions in ``ir_text`` as llvmlite prints it (one indented line each)."""
    return ir_text.count("\n  ")


def choose_tier(ir_size: int, opt_level: int, light: bool = False, loops: bool = False) -> Tier:
    """The tier for a module of ``ir_size`` IR instructions; ``loops``: the
    program has a loop; ``light``: it is too long for the full pipeline (more
    than ``LIGHT_PIPELINE_SLOTS`` slots) unless ``opt_level`` is 3."""
    if opt_level <= 0:
        return NO_OPT_TIER
    level = min(opt_level, 3)
    if level == 3 or (not light and (loops or ir_size <= FULL_TIER_IR)):
        return Tier("full", None, level)
    return Tier("reduced", REDUCED_PASSES, level) if loops else LIGHT_TIER


@dataclass
class Compiled:
    """Native code of one program: entry addresses, the IR it came from, its
    tier. The optimised IR and the assembly are rebuilt from the IR on first
    use (the same passes give the same module), so no LLVM module is kept
    alive per cached program."""

    addresses: dict[str, int]
    llvm_ir: str
    compile_seconds: float
    tier: Tier
    opt_level: int
    from_disk: bool = False  # the object code came from the on-disk cache
    # What the front end learnt while lowering and needs again on a cache hit
    # (``runtime.Lowered``), so a hit skips the lowering as well.
    lowered: object = None
    _optimized: str | None = field(default=None, repr=False)
    _asm_text: str | None = field(default=None, repr=False)

    @property
    def optimized_ir(self) -> str:
        if self._optimized is None:
            with _lock:  # the target machines are shared with compile_ir
                self._optimized = str(optimized_module(self.llvm_ir, self.tier, self.opt_level))
        return self._optimized

    @property
    def assembly(self) -> str:
        if self._asm_text is None:
            with _lock:
                module = optimized_module(self.llvm_ir, self.tier, self.opt_level)
                self._asm_text = _target_machine(self.tier.codegen_level).emit_assembly(module)
        return self._asm_text


_cache: dict[str, Compiled] = {}


def cache_key(*parts: bytes | str | int) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


# Programs longer than this get the light tier even when they loop (the caller
# passes ``light``): the full pipeline would take seconds.
LIGHT_PIPELINE_SLOTS = 2048


def optimize(mod: llvm.ModuleRef, tier: Tier, tm: llvm.TargetMachine, opt_level: int) -> None:
    """Run ``tier``'s passes over ``mod`` in place."""
    if tier.passes == ():
        return
    pto = llvm.create_pipeline_tuning_options(speed_level=min(max(opt_level, 1), 3))
    # No partial/runtime loop unrolling (gcc -O2 does none either): on the sieve
    # benchmark LLVM unrolled the outer loop 4x around its inner loops, spilled
    # registers and ran ~20% slower; compiling is faster without it too.
    # Vectorisation (and its interleaving) stays on.
    pto.loop_unrolling = False
    pb = llvm.create_pass_builder(tm, pto)
    if tier.passes is None:
        mpm = pb.getModulePassManager()
    else:
        mpm = llvm.create_new_module_pass_manager()
        for name in tier.passes:
            getattr(mpm, f"add_{name}_pass")()
    mpm.run(mod, pb)


def optimized_module(ir_text: str, tier: Tier, opt_level: int) -> llvm.ModuleRef:
    """``ir_text`` parsed, verified and optimised for ``tier``."""
    tm = _target_machine(tier.codegen_level)
    mod = llvm.parse_assembly(ir_text)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    optimize(mod, tier, tm, opt_level)
    return mod


# -- on-disk object cache ----------------------------------------------------------
# Opt-in: ``EBPFVM_JIT_CACHE=1`` caches object code under
# ``$XDG_CACHE_HOME/ebpfvm/jit`` (default ``~/.cache/ebpfvm/jit``), any other
# non-empty value but ``0`` names the directory. A file is keyed by everything
# its code depends on: the IR text (which holds the program, the mode and
# every address resolved at compile time), the tier and opt level, llvmlite's
# and LLVM's versions and the host CPU with its features. The helper
# trampoline's address is not in the object: MCJIT resolves it at load time.
CACHE_ENV = "EBPFVM_JIT_CACHE"
_DIGEST = 32  # each file: sha256 of the object, then the object


def disk_cache_dir() -> Path | None:
    value = os.environ.get(CACHE_ENV, "")
    if value in ("", "0"):
        return None
    if value != "1":
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ebpfvm" / "jit"


def _disk_path(directory: Path, ir_text: str, tier: Tier, opt_level: int) -> Path:
    import llvmlite

    host = (llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten())
    key = cache_key(ir_text, tier.name, tier.codegen_level, opt_level, llvmlite.__version__,
                    ".".join(map(str, llvm.llvm_version_info)), *host)
    return directory / f"{key}.o"


def _read_object(path: Path) -> bytes | None:
    """The object stored at ``path``; None when absent or damaged (a damaged
    object must never reach the loader: LLVM aborts the process on some)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest, obj = data[:_DIGEST], data[_DIGEST:]
    return obj if len(data) > _DIGEST and hashlib.sha256(obj).digest() == digest else None


def _write_object(path: Path, obj: bytes) -> None:
    """Best effort: a cache that cannot be written is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(hashlib.sha256(obj).digest() + obj)
        os.replace(tmp, path)
    except OSError:
        pass


def cached(key: str) -> Compiled | None:
    """The code compiled earlier under ``key``, if any."""
    with _lock:
        return _cache.get(key)


def compile_ir(key: str, ir_text: str, names: list[str], opt_level: int, light: bool = False,
               lowered: object = None) -> Compiled:
    """Optimise and compile ``ir_text``; the addresses of the functions ``names``.
    The tier follows from the module (size, loops), ``opt_level`` and ``light``
    (``choose_tier``). ``key`` must stand for everything ``ir_text`` depends
    on; ``lowered`` is kept with the code."""
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        started = time.perf_counter()
        tier = choose_tier(ir_instructions(ir_text), opt_level, light, f"!{LOOPS_METADATA} =" in ir_text)
        directory = disk_cache_dir()
        path = _disk_path(directory, ir_text, tier, opt_level) if directory is not None else None
        obj = _read_object(path) if path is not None else None
        from_disk = obj is not None
        if obj is None:
            mod = optimized_module(ir_text, tier, opt_level)
            obj = _target_machine(tier.codegen_level).emit_object(mod)
            if path is not None:
                _write_object(path, obj)
        ee = _engine()
        ee.add_object_file(llvm.ObjectFileRef.from_data(obj))
        ee.finalize_object()
        addresses = {name: ee.get_function_address(name) for name in names}
        compiled = Compiled(addresses, ir_text, time.perf_counter() - started, tier, opt_level, from_disk, lowered)
        _cache[key] = compiled
        return compiled


def clear_cache() -> None:
    """Forget cached programs (their code stays mapped: MCJIT keeps the objects)."""
    with _lock:
        _cache.clear()
