"""ebpfvm.verifier: the userspace model of the Linux eBPF verifier (issue 5).

Layers, as in the design card (cfg -> state -> domains -> transfer -> checks -> explore -> log):

* ``cfg``: the control-flow graph the kernel's check_cfg walks.
* ``structure``: the structural checks run before abstract interpretation,
  with the kernel's messages (``messages``) and errnos.
* ``domains``: tnum and scalar bounds, branch refinement.
* ``state``: registers (kinds, offsets, ids, packet ranges), per-byte stack
  slots with spilled registers, frames; equivalence for pruning.
* ``transfer``: one function per instruction class (ALU incl. pointer
  arithmetic, loads/stores, atomics, LD_ABS/IND, lddw, jumps with null-check
  and packet-range propagation, helper and bpf-to-bpf calls, exit).
* ``checks``: register reads, memory access per region, ctx access per
  program type, helper arguments from prototypes, return ranges.
* ``explore``: the path walk (fall-through first, jump targets pushed),
  pruning against finished checkpoints, infinite-loop detection against
  unfinished ones, the 1,000,000-instruction limit.
* ``api``: ``verify(program, ...) -> VerifierResult``.

Simplified against the kernel: no liveness/precision marks (pruning
compares all registers and stack: it prunes less, never unsoundly more);
scalar ids are compared exactly; root (privileged) rules are the default —
uninitialised stack reads are allowed (allow_uninit_stack), pointer
comparisons and pointer - pointer are allowed.  Not modelled: kfuncs, BTF
(func_info, typed pointers beyond struct bpf_array/bpf_sock bounds), spin
locks, timers, dynptrs, iterators, callbacks (bpf_loop), known-key array
lookups returning non-NULL, narrow spills of constants (4-byte stores of
constants read back as unknown scalars).
"""

from .api import ACCEPT, REJECT, VerifierError, VerifierResult, verify

__all__ = ["ACCEPT", "REJECT", "VerifierError", "VerifierResult", "verify"]
