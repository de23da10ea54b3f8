"""Asking the live kernel for a case's verdict, from a forked child."""

from __future__ import annotations

from ebpfvm.errors import InputFileError
from ebpfvm.kernel.funcinfo import func_info_for, needs_func_info

from .build import build_program
from .model import ACCEPT, REJECT, Case, Outcome, errno_name

# --- asking the kernel -----------------------------------------------------------


class CaseRunError(InputFileError):
    """The kernel could not give a verdict for a case: the loading child
    crashed or hung, or the kernel refused to create a declared map."""

    def __reduce__(self):
        return (type(self), (self.path, self.message, self.line))


def _load_in_child(insns: bytes, prog_type: int, attach_type: int, prog_flags: int,
                   maps: tuple[tuple[int, int, int, int, int, str], ...]) -> Outcome:
    """Runs in the forked child: create the maps, put their fds into the
    program, load it with log level 1 and turn the answer into an Outcome.
    Nothing is closed explicitly: the child exits right after."""
    from ebpfvm import kernel

    created = [kernel.create_map(*spec) for spec in maps]  # keep them: dropping one closes its fd
    fds = [m.fd for m in created]
    if fds:
        insns = kernel.relocate_map_indices(insns, fds)
    btf = {}
    if needs_func_info(insns):  # callbacks: the kernel wants func_info (a minimal BTF)
        from ebpfvm.kernel.btf import load_btf
        blob, records = func_info_for(insns)
        loaded_btf = load_btf(blob)
        btf = {"prog_btf_fd": loaded_btf.fd, "func_info": records}
    try:
        kernel.load_program(insns, prog_type, log_level=1, expected_attach_type=attach_type,
                            prog_flags=prog_flags, **btf)
    except kernel.KernelVerifierError as exc:
        return Outcome(REJECT, kernel.last_error_line(exc.log) or None, errno_name(exc.errno))
    return Outcome(ACCEPT)


def kernel_outcome(case: Case, *, timeout: float = 60.0) -> Outcome:
    """Load ``case`` in the live kernel (maps created, log level 1, in a
    forked child so that a verifier Oops kills only the child) and return
    its verdict.  Raises CaseBuildError, CaseRunError, or KernelUnavailable."""
    from ebpfvm import kernel

    insns = build_program(case)
    kernel.ensure_available()
    maps = tuple((spec.map_type_number, spec.key_size, spec.value_size, spec.max_entries, spec.flags_value,
                  spec.name) for spec in case.maps)
    try:
        return kernel.run_in_child(_load_in_child, insns, case.prog_type_number, case.attach_type_number or 0,
                                   case.prog_flags_value, maps, timeout=timeout)
    except kernel.ChildCrashed as exc:
        raise CaseRunError(case.path, f"the loading child did not report: {exc}", None) from None
    except (kernel.KernelError, kernel.KernelArgumentError, kernel.ChildError) as exc:
        # map creation refused, or something else failed before the load
        raise CaseRunError(case.path, f"kernel setup failed: {exc}", None) from None
