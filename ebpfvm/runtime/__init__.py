"""Running real programs: program types and their contexts, packets, maps,
tail calls and callbacks (``Runtime``, ``ProgramRun``, ``run_program``).

    from ebpfvm.elf import load_object
    from ebpfvm.runtime import Runtime

    runtime = Runtime.for_object(load_object("examples/xdp_firewall.o"))
    result = runtime.run("xdp_firewall", packet=frame)
    result.action                       # "XDP_PASS"
"""

from .result import ProgramRun, Redirect
from .runtime import Runtime, UnknownProgram, run_program

__all__ = ["ProgramRun", "Redirect", "Runtime", "UnknownProgram", "run_program"]
