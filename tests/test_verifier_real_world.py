"""clang's own code (``fixtures/real_world*.c``: packet parsing, bounded and
nested loops, maps, atomics, ring buffers, bpf_loop, tracing helpers with
bounded sizes, map iteration, tail calls, spilled packet pointers, string
helpers, and the usual mistakes): the verdict, error line and processed-instruction count the 6.18
kernel gives each program, pinned here, and compared with the live kernel
when it is here."""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_support import comparable_log, object_kernel_log, require_kernel

from ebpfvm.elf import load_object
from ebpfvm.verifier import verify

FIXTURES = Path(__file__).parent / "fixtures"

# object -> program -> (verdict, error line, processed insns), as the kernel reports them
KERNEL = {"real_world.o": {
    "count_udp_ports": ("accept", None, 52),
    "udp_unchecked": ("reject", "R2 offset is outside of the packet", 15),
    "report": ("accept", None, 18),
    "report_leak": ("reject", "BPF_EXIT instruction in main prog would lead to reference leak", 9),
    "sum_bytes": ("accept", None, 653),
    "lookup_unchecked": ("reject", "R0 invalid mem access 'map_value_or_null'", 9),
    "count_by_class": ("accept", None, 14),
    "loop_total": ("accept", None, 44),
    "half_bounded_index": ("reject", "value -2147483648 makes fp pointer be out of bounds", 11),
    "bounded_index": ("accept", None, 12),
}, "real_world2.o": {
    "comm_prefix": ("accept", None, 36),
    "read_masked": ("accept", None, 19),
    "read_unbounded": ("reject", "R2 min value is negative, either use unsigned or 'var &= const'", 13),
    "load_at_offset": ("accept", None, 16),
    "direct_variable_offset": ("accept", None, 14),
    "signed_index": ("reject", "value -2147483648 makes map_value pointer be out of bounds", 13),
    "store_record": ("accept", None, 21),
    "store_partial_record": ("accept", None, 13),
    "total_values": ("accept", None, 31),
    "dispatch": ("accept", None, 6),
}, "real_world3.o": {
    "spilled_packet_pointer": ("accept", None, 15),
    "loop_from_map": ("accept", None, 202),
    "nested_loops": ("accept", None, 66),
    "atomics": ("accept", None, 27),
    "compare_name": ("accept", None, 26),
    "divide": ("accept", None, 13),
    "classify": ("accept", None, 25),
    "index_too_large": ("reject", "invalid variable-offset read from stack R2 var_off=(0x0; 0xff) off=-16 size=1", 9),
    "return_pointer": ("accept", None, 10),
}, "real_world4.o": {
    "pop_header": ("accept", None, 20),
    "stale_after_adjust": ("reject", "R6 invalid mem access 'scalar'", 9),
    "redirect_by_byte": ("accept", None, 13),
    "stale_after_store": ("reject", "R6 invalid mem access 'scalar'", 14),
    "perf_record": ("accept", None, 12),
    "ring_variable": ("accept", None, 15),
    "string_length": ("accept", None, 18),
    "string_length_unmasked": ("accept", None, 16),
    "cgroup_count": ("accept", None, 6),
    "cgroup_bad_return": ("reject", "At program exit the register R0 has smin=7 smax=7 should have been in [0, 3]", 2),
}}
# Programs whose count depends on the machine (compared with the live kernel only).
MACHINE_DEPENDENT = {"real_world4.o": {"cpu_index"}}
CASES = [(path, name) for path, programs in KERNEL.items() for name in sorted(programs)]


_OBJECTS: dict = {}


def _object(path: str):  # type: ignore[no-untyped-def]
    """A fixture object by name, or ``examples/NAME.o``."""
    if path not in _OBJECTS:
        _OBJECTS[path] = load_object(str(FIXTURES.parent.parent / path if path.startswith("examples/")
                                         else FIXTURES / path))
    return _OBJECTS[path]


@pytest.mark.parametrize("path", sorted(KERNEL))
def test_every_program_is_pinned(path: str) -> None:
    names = {p.name for p in _object(path).programs} - MACHINE_DEPENDENT.get(path, set())
    assert sorted(names) == sorted(KERNEL[path])


@pytest.mark.parametrize("path,name", CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_kernel_verdict_line_and_count(path: str, name: str) -> None:
    result = verify(_object(path).program(name))
    got = (result.verdict, result.error.message if result.error else None, result.stats["processed_insns"])
    assert got == KERNEL[path][name]


@pytest.mark.parametrize("path", sorted(KERNEL))
def test_the_live_kernel_agrees(path: str) -> None:
    require_kernel()
    from ebpfvm.kernel.objects import verify_object_in_kernel
    obj = _object(path)
    for name, verdict in verify_object_in_kernel(obj).items():
        want = ("accept" if verdict.accepted else "reject", verdict.error_line or None,
                verdict.stats.insns_processed)
        if name in MACHINE_DEPENDENT.get(path, set()):
            result = verify(obj.program(name))
            assert (result.verdict, result.error.message if result.error else None,
                    result.stats["processed_insns"]) == want, name
        else:
            assert want == KERNEL[path][name], name


# Lines of the kernel's level-1 logs of these programs (outside the instruction trace).
KERNEL_LOG_LINES = {
    ("real_world.o", "report_leak"): "Unreleased reference id=2 alloc_insn=4\n"
                                     "BPF_EXIT instruction in main prog would lead to reference leak\n",
    ("real_world.o", "loop_total"): "stack depth 40+0\n",  # 16 + the 24 bytes of the inlined bpf_loop
    ("real_world2.o", "total_values"): "stack depth 8+0\n",  # the callback is a subprogram too
    ("real_world2.o", "read_unbounded"): "arg#0 reference type('UNKNOWN ') size cannot be determined: -22\n"
                                         "0: R1=ctx() R10=fp0\n",
}


@pytest.mark.parametrize("path,name", sorted(KERNEL_LOG_LINES), ids=[f"{p}:{n}" for p, n in sorted(KERNEL_LOG_LINES)])
def test_log_lines_outside_the_trace(path: str, name: str) -> None:
    assert KERNEL_LOG_LINES[path, name] in verify(_object(path).program(name), log_level=1).log


EXAMPLES = sorted(f"examples/{p.name}" for p in (FIXTURES.parent.parent / "examples").glob("*.o"))
OBJECTS = sorted(KERNEL) + ["global_funcs.o", "multi_prog.o", "spin_lock.o", "legacy_maps.o"] + EXAMPLES


@pytest.mark.parametrize("path", OBJECTS)
def test_level_one_logs_equal_the_kernels(path: str) -> None:
    """Every program's whole level-1 log, but for map addresses and time."""
    require_kernel()
    obj = _object(path)
    for program in obj.programs:
        kernel = object_kernel_log(obj, program.name, 1)
        assert comparable_log(verify(program, log_level=1).log) == comparable_log(kernel), program.name
