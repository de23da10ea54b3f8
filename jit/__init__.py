"""ebpfvm.jit: lowering of verified programs to native code through llvmlite (issue 6).

Nothing lives here yet.
"""
