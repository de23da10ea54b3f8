"""The Runtime API: building from objects and programs, finding programs,
maps shared across runs, injectable environment, captured output, faults,
and every example program of examples/ (the table in example_runs.py)."""

from __future__ import annotations

import struct

import pytest

from ebpfvm.elf import load_object
from ebpfvm.errors import BudgetExhausted, MemoryFault
from ebpfvm.helpers import HelperEnv, StepClock, Task
from ebpfvm.maps import MapDefinition
from ebpfvm.runtime import ProgramRun, Runtime, UnknownProgram, run_program

from example_runs import EXAMPLE_RUNS, EXAMPLES, ExampleRun, example_runtime
from runtime_support import array, frame, typed, u32, u64


@pytest.mark.parametrize("case", EXAMPLE_RUNS, ids=lambda case: case.id)
def test_example_programs(case: ExampleRun) -> None:
    runtime = example_runtime(case)
    result = runtime.run(case.program, packet=case.packet)
    assert result.retval == case.retval
    assert result.packet == (case.packet_out if case.packet_out is not None else case.packet)
    for name, entries in case.maps.items():
        for key, value in entries.items():
            assert runtime.maps[name].lookup(key) == value, (name, key)


def test_for_object_holds_all_programs_and_maps() -> None:
    runtime = Runtime.for_object(load_object(str(EXAMPLES / "tail_calls.o")))
    assert list(runtime.programs) == ["handle_ipv4", "handle_ipv6", "dispatch"]
    assert list(runtime.maps) == ["jump_table", "hits"]
    assert runtime.program("dispatch").section == "xdp"
    assert runtime.program("xdp").name == "handle_ipv4"  # a section name finds its first program
    with pytest.raises(UnknownProgram, match="no program named 'nope' .*dispatch"):
        runtime.run("nope", packet=frame())


def test_maps_persist_across_runs_and_python_sees_program_writes() -> None:
    runtime = Runtime.for_object(load_object(str(EXAMPLES / "global_data.o")))
    for _ in range(3):
        runtime.run("score_packet", packet=frame(60))
    assert runtime.maps[".data"].lookup(0) == u64(103)
    runtime.maps[".data"].update(0, u64(1))
    runtime.run("score_packet", packet=frame(60))
    assert runtime.maps[".data"].lookup(0) == u64(2)


def test_program_without_map_definitions_indexes_the_runtime_maps() -> None:
    program = typed("lddw %r1, map_value 1, 4\nldxw %r0, [%r1+0]\nexit", "socket_filter")
    runtime = Runtime([program], [array("a", 1), MapDefinition("b", "array", 4, 8, 1)])
    runtime.maps["b"].update(0, u64(0x7777_0000_0000))
    assert runtime.run(program, packet=frame()).r0 == 0x7777


def test_program_maps_are_matched_by_name() -> None:
    shared = array("shared", 1)
    writer = typed("lddw %r1, map_value 0, 0\nstdw [%r1+0], 5\nmov %r0, 0\nexit", "xdp", name="w",
                   maps=(array("other", 1), shared)[1:])
    reader = typed("lddw %r1, map_value 1, 0\nldxdw %r0, [%r1+0]\nexit", "xdp", name="r",
                   maps=(array("other", 1), shared))
    runtime = Runtime([writer, reader])
    runtime.run("w", packet=frame())
    assert runtime.run("r", packet=frame()).r0 == 5


def test_run_program_creates_maps_from_definitions() -> None:
    program = typed("lddw %r1, map_value 0, 0\nldxdw %r0, [%r1+0]\nexit", "xdp",
                    maps=(MapDefinition(".rodata", "array", 4, 8, 1, initial_value=u64(21), read_only=True),))
    assert run_program(program, packet=frame()).r0 == 21


def test_prog_type_override() -> None:
    program = typed("ldxw %r0, [%r1+0]\nexit", None)
    assert run_program(program, packet=frame(60), prog_type="socket_filter").r0 == 46
    assert run_program(program, packet=frame(60), prog_type="tc").r0 == 60


def test_injected_env_makes_runs_reproducible() -> None:
    program = typed("call bpf_get_prandom_u32\nmov %r6, %r0\ncall bpf_ktime_get_ns\nadd %r0, %r6\nexit", "kprobe")
    results = {run_program(program, env=HelperEnv(seed=7, clock=StepClock(1000, 10))).r0 for _ in range(3)}
    assert len(results) == 1


def test_trace_printk_lines_of_each_run() -> None:
    text = """
        lddw %r1, 0x0a64252078
        stxdw [%r10-8], %r1
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        mov %r3, 42
        call bpf_trace_printk
        mov %r0, 0
        exit
    """  # "x %d\n"
    env = HelperEnv()
    runtime = Runtime([typed(text, "kprobe", name="p")], env=env)
    assert runtime.run("p").trace == ["x 42\n"]
    assert runtime.run("p").trace == ["x 42\n"]
    assert len(env.trace_log) == 2


def test_ringbuf_records_of_the_kprobe_example() -> None:
    env = HelperEnv(task=Task(pid=11, tgid=10))
    runtime = Runtime.for_object(load_object(str(EXAMPLES / "kprobe_counter.o")), env=env)
    first = runtime.run("count_unlinkat")
    second = runtime.run("count_unlinkat")
    assert first.ringbuf_events == {"events": [struct.pack("<IIQ", 11, 10, 1)]}
    assert second.ringbuf_events == {"events": [struct.pack("<IIQ", 11, 10, 2)]}


def test_perf_events_of_a_run() -> None:
    text = """
        stdw [%r10-8], 0x1234
        lddw %r2, map_fd 0
        lddw %r3, 0xffffffff
        mov %r4, %r10
        add %r4, -8
        mov %r5, 8
        call bpf_perf_event_output
        exit
    """
    events = MapDefinition("events", "perf_event_array", 4, 4, 0)
    result = run_program(typed(text, "kprobe", maps=(events,)))
    assert result.r0 == 0
    assert [(e.cpu, e.data) for e in result.perf_events["events"]] == [(0, u64(0x1234))]


def test_result_fields() -> None:
    result = run_program(typed("mov %r0, 2\nexit", "xdp", name="p"), packet=frame())
    assert isinstance(result, ProgramRun)
    assert (result.executed, result.program, result.tail_calls, result.steps, result.trace) == (2, "p", 0, None, [])
    assert (result.ringbuf_events, result.perf_events, result.redirect) == ({}, {}, None)


def test_faults_carry_the_program_and_trace() -> None:
    program = typed("mov %r0, 1\nldxw %r0, [%r0+0]\nexit", "xdp", name="bad")
    with pytest.raises(MemoryFault) as info:
        run_program(program, packet=frame(), trace=True)
    assert info.value.program == "bad"
    assert info.value.executed == 1
    assert [e.pc for e in info.value.trace] == [0]


def test_budget() -> None:
    program = typed("ja -1\nexit", "xdp")  # ja to itself
    with pytest.raises(BudgetExhausted) as info:
        run_program(program, packet=frame(), budget=100)
    assert info.value.executed == 100


def test_subprograms_and_stack_per_run() -> None:
    text = """
        ldxdw %r0, [%r10-8]
        stdw [%r10-8], 5
        call local sub
        exit
    sub:
        ldxdw %r1, [%r10-8]
        add %r0, %r1
        exit
    """
    runtime = Runtime([typed(text, "xdp", name="p")])
    assert runtime.run("p", packet=frame()).r0 == 0
    assert runtime.run("p", packet=frame()).r0 == 0  # each run starts with zeroed stacks


def test_two_maps_with_one_name_are_refused() -> None:
    from ebpfvm.errors import UserInputError
    with pytest.raises(UserInputError, match="two maps named 'a'"):
        Runtime([], [array("a"), array("a")])


def test_map_contents_given_as_objects() -> None:
    from ebpfvm.maps import create_map
    counter = create_map(array("c", 1))
    program = typed("lddw %r1, map_value 0, 0\nstdw [%r1+0], 9\nmov %r0, 0\nexit", "xdp", maps=(array("c", 1),))
    Runtime([program], [counter]).run(program, packet=frame())
    assert counter.lookup(u32(0)) == u64(9)
