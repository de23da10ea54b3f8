"""ebpfvm.verifier: the userspace model of the Linux eBPF verifier (issue 5).

Will hold the CFG pass, register/stack state, the tnum and scalar-bounds
domains, per-class transfer functions, memory and helper checks, the
exploration loop and the kernel-format log. Nothing lives here yet.
"""
