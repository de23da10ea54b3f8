"""Running helper tests on the interpreter with map values, before a runtime
binds real maps: ``lddw rX, map_value i, off`` resolves to a bytearray
region at ``map_window(i) + off``, mapped afresh at the start of every run.
"""

from __future__ import annotations

from typing import Sequence

from ebpfvm.helpers import HelperEnv
from ebpfvm.interp import Interpreter, RunResult
from ebpfvm.isa import Instruction, LddwSource
from ebpfvm.memory import Region, map_window
from ebpfvm.program import Program


def value_regions(values: Sequence[bytes], read_only: Sequence[bool] = ()) -> list[Region]:
    return [Region(f"map {i} value", map_window(i), bytearray(value),
                   writable=not (read_only[i] if i < len(read_only) else False))
            for i, value in enumerate(values)]


def run_with_values(program: Program, values: Sequence[bytes], env: HelperEnv, *,
                    read_only: Sequence[bool] = (), mem: bytes = b"", runs: int = 1
                    ) -> tuple[RunResult, list[bytes]]:
    """Run ``program`` ``runs`` times with map ``i``'s value holding
    ``values[i]`` (the regions persist across runs, like maps); the last
    result and the values afterwards."""
    regions = value_regions(values, read_only)

    def resolve(pc: int, head: Instruction, tail: Instruction) -> int | None:
        if head.src == LddwSource.MAP_VALUE:
            return map_window(head.imm) + tail.imm
        return None

    interpreter = Interpreter(program, env=env, resolve_pseudo=resolve)
    memory = interpreter.machine.memory
    begin_run = env.begin_run

    def begin_run_with_values() -> None:  # the machine unmapped every region just before
        begin_run()
        for region in regions:
            memory.add(region)

    env.begin_run = begin_run_with_values  # type: ignore[method-assign]
    try:
        for _ in range(runs):
            result = interpreter.run(mem)
    finally:
        env.begin_run = begin_run  # type: ignore[method-assign]
    return result, [bytes(region.data) for region in regions]
