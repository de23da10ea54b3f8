"""ebpfvm.verifier: the userspace model of the Linux eBPF verifier (issue 5, in progress).

Layers, as in the design card (cfg -> state -> domains -> transfer -> checks -> explore -> log):

* ``cfg``: the control-flow graph the kernel's check_cfg walks (subprograms,
  blocks, edges, back edges, postorder).
* ``structure``: the structural checks the kernel runs before abstract
  interpretation, with its messages (``messages``) and errnos.
* ``domains``: tnum and scalar bounds (when present).

The abstract interpretation itself (state, transfer, checks, explore, log) is
still to come.
"""
