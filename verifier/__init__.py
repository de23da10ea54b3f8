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
  the kernel's prune points and checkpoint policy (2 jumps + 8 insns),
  pruning against finished checkpoints, infinite-loop detection against
  unfinished ones, the 1,000,000-instruction limit.
* ``liveness``: static register liveness (``compute_live_registers``, the
  level-2 ``Live regs`` table) and stack-slot liveness from recorded reads;
  dead registers and slots of a finished checkpoint match anything.
* ``backtrack``: precision (``mark_chain_precision``): scalars a later use
  needed exactly are marked in the checkpoints they came from; the others
  match any scalar when pruning.
* ``globals``: functions with global linkage in the program's BTF: a call
  is checked against the prototype, and each called one is verified once on
  its own from the arguments the prototype allows (``do_check_subprogs``).
* ``api``: ``verify(program, ...) -> VerifierResult``.

Simplified against the kernel: precision is sought conservatively (every
scalar helper argument, every non-spilling narrow stack store; a walk it
cannot follow through atomics or callback frames marks every scalar up the
chain precise), stack liveness cleans every frame at its pending
instruction from reads recorded per instruction rather than per call
chain, maybe-NULL and packet pointer ids are mapped as the kernel does but
other pointers' ids are ignored: it prunes at most as much as the kernel
(9 of the 10 example programs process exactly the kernel's count); root (privileged) rules are the default —
uninitialised stack reads are allowed (allow_uninit_stack), pointer
comparisons and pointer - pointer are allowed.  Not modelled: kfuncs, BTF
beyond global functions' prototypes (``arg:`` decl tags, typed pointers
beyond struct bpf_array/bpf_sock bounds), spin locks, timers, dynptrs,
iterators.

Callbacks (``callbacks``): bpf_loop and bpf_for_each_map_elem callbacks are
iterated as the kernel does — the callback's exit returns to the helper call,
which schedules the next run with the caller's updated state, until the call
site (a forced checkpoint) is covered by an unfinished checkpoint there;
bpf_loop stops at its nr_loops bound.  Between runs, scalars that changed and
that no check needed exactly are widened to unknown; "needed exactly" is
``precision``'s forward record of the stack slots such values came from (it
widens at most as much as the kernel).
Array and percpu_array lookups with a key known at verification time (as
root: zero bytes, or a constant spilled in exactly the key's size, including
narrow spills of scalars and BPF_ST constants) and below max_entries return
a map value that is never NULL.
"""

from .api import ACCEPT, REJECT, VerifierError, VerifierResult, verify

__all__ = ["ACCEPT", "REJECT", "VerifierError", "VerifierResult", "verify"]
