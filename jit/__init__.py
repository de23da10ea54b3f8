"""ebpfvm.jit: eBPF programs compiled to native code through llvmlite (issue 6).

    from ebpfvm.jit import compile
    jit = compile(program, mode="checked", opt_level=2)
    jit.run(mem=b"...", budget=1_000_000)       # JitResult(r0, executed, mem)
    jit.run_many(np.zeros((n, size), np.uint8)) # r0 of every row, one native call
    jit.llvm_ir, jit.optimized_ir, jit.assembly

Real programs (maps, helpers, contexts, packets) run through the runtime:
``Runtime.run(prog, packet=..., engine="jit")`` / ``ebpfvm run OBJ.o --engine
jit`` (``runtime_glue``: lddw map pseudo sources resolved at compile time to
the interpreter's numbers, map values/packet/stack reached natively, context
fields and faults through a callback into the run's ``MemoryMap``, array
lookups inlined, tail calls and bpf_loop / for_each callbacks native; callx
and instruction tracing fall back to the interpreter with
``Runtime.fallback_reason``).

Modules: ``cfg`` (blocks, subprogram entries), ``lowering`` (one method per
operation, dispatched by opcode), ``irtext`` (the ``IRBuilder`` interface
writing function bodies straight to llvmlite.ir's text), ``memory`` (fake
address -> host memory, bounds checks, the run context), ``engine`` (target
machine, pass pipeline, MCJIT, cache), ``runtime`` (``JitProgram``, helper
callback, faults), ``runtime_glue`` (what ``Runtime`` runs on the JIT).
"""

from .runtime import MODES, JitProgram, JitResult, compile, run

__all__ = ["JitProgram", "JitResult", "MODES", "compile", "run"]
