"""Control-transfer helpers: bpf_tail_call (chains, the limit of 33, empty and
out-of-range slots, fresh stacks, calls from subprograms), bpf_loop and
bpf_for_each_map_elem (callbacks as nested interpreter runs sharing the
budget). Expected values are worked out from the kernel's semantics
(kernel/bpf/core.c JMP_TAIL_CALL, kernel/bpf/bpf_iter.c, arraymap.c)."""

from __future__ import annotations

import errno
import struct

import pytest

from ebpfvm.asm import assemble
from ebpfvm.errors import BudgetExhausted, MemoryFault
from ebpfvm.helpers.control import BadCallback
from ebpfvm.helpers.packet import HelperUnavailable
from ebpfvm.interp import Interpreter
from ebpfvm.maps import MapDefinition
from ebpfvm.runtime import Runtime, run_program

from runtime_support import array, frame, hash_map, prog_array, typed, u32, u64

MASK64 = (1 << 64) - 1


# -- tail calls -----------------------------------------------------------------------------------
def tail_runtime(programs: dict[str, str], slots: list[tuple[int, str]], *, max_entries: int = 4):
    """XDP programs sharing map 0 = the jump table, map 1 = a counter array."""
    maps = (prog_array("jt", max_entries, slots), array("count", 1))
    built = [typed(text, "xdp", name=name, maps=maps) for name, text in programs.items()]
    return Runtime(built)


COUNT = """
    lddw %r2, map_value 1, 0
    lock add [%r2+0], %r8
"""  # r8 must be 1


def call(slot: int | str) -> str:
    return f"mov %r1, %r6\nlddw %r2, map_fd 0\nmov %r3, {slot}\ncall bpf_tail_call\n"


def test_tail_call_chain() -> None:
    runtime = tail_runtime({
        "a": "mov %r6, %r1\n" + call(1) + "mov %r0, 1\nexit",
        "b": "mov %r6, %r1\n" + call(2) + "mov %r0, 2\nexit",
        "c": "mov %r0, 42\nexit",
    }, [(1, "b"), (2, "c")])
    result = runtime.run("a", packet=frame())
    assert (result.r0, result.tail_calls, result.program) == (42, 2, "c")


def test_tail_call_limit_is_33() -> None:
    runtime = tail_runtime({"self": "mov %r6, %r1\nmov %r8, 1\n" + COUNT + call(0) + "mov %r0, 7\nexit"},
                           [(0, "self")])
    result = runtime.run("self", packet=frame())
    assert (result.r0, result.tail_calls) == (7, 33)
    assert runtime.maps["count"].lookup(0) == u64(34)  # the first run and 33 tail calls
    again = runtime.run("self", packet=frame())  # the count is per run
    assert again.tail_calls == 33 and runtime.maps["count"].lookup(0) == u64(68)


def test_empty_slots_do_not_count_towards_the_limit() -> None:
    # As the x86-64 JIT: only a tail call that is taken counts.
    runtime = tail_runtime({"p": "mov %r6, %r1\nmov %r8, 1\n" + COUNT + call(1) + call(0) + "mov %r0, 3\nexit"},
                           [(0, "p")])
    result = runtime.run("p", packet=frame())
    assert (result.r0, result.tail_calls) == (3, 33)
    assert runtime.maps["count"].lookup(0) == u64(34)


@pytest.mark.parametrize("slot", [1, 3, 4, -1])
def test_failed_tail_call_falls_through_with_r0_unchanged(slot: int) -> None:
    runtime = tail_runtime({"p": "mov %r6, %r1\nmov %r0, 99\n" + call(slot) + "exit",
                            "q": "mov %r0, 1\nexit"}, [(0, "q")])
    result = runtime.run("p", packet=frame())
    assert (result.r0, result.program, result.tail_calls) == (99, "p", 0)


def test_tail_call_index_is_a_u32() -> None:
    runtime = tail_runtime({"p": "mov %r6, %r1\nmov %r1, %r6\nlddw %r2, map_fd 0\nlddw %r3, 0x100000000\n"
                                 "call bpf_tail_call\nmov %r0, 1\nexit",
                            "q": "mov %r0, 2\nexit"}, [(0, "q")])
    assert runtime.run("p", packet=frame()).r0 == 2


def test_tail_call_target_gets_a_fresh_stack_and_the_same_context() -> None:
    runtime = tail_runtime({
        "a": "mov %r6, %r1\nstdw [%r10-8], 0x1234\n" + call(0) + "mov %r0, 1\nexit",
        "b": "ldxdw %r0, [%r10-8]\nldxw %r2, [%r1+4]\nldxw %r3, [%r1+0]\nsub %r2, %r3\nadd %r0, %r2\nexit",
    }, [(0, "b")])
    assert runtime.run("a", packet=frame(77)).r0 == 77


# a's subprogram tail-calls b: b's r0 returns to a (after its call), and b
# starts on a fresh stack although sub stored 0x55 at fp-8.
SUBPROGRAM_TAIL_CALL = {
    "a": """
        mov %r6, %r1
        mov %r7, 1000
        call local sub
        add %r0, %r7
        exit
    sub:
        stdw [%r10-8], 0x55
        """ + call(0) + """
        mov %r0, 1
        exit
    """,
    "b": "ldxdw %r0, [%r10-8]\nadd %r0, 5\nexit",
}


def test_tail_call_from_a_subprogram_returns_to_its_caller() -> None:
    runtime = tail_runtime(SUBPROGRAM_TAIL_CALL, [(0, "b")])
    result = runtime.run("a", packet=frame())
    assert result.r0 == 1005  # b's 5 (on a fresh stack) came back to a, whose r7 survived
    assert result.program == "a"


def test_tail_call_slots_hold_programs_or_names() -> None:
    runtime = tail_runtime({"p": "mov %r6, %r1\n" + call(2) + call(3) + "mov %r0, 0\nexit"}, [(3, "nobody")])
    target = typed("mov %r0, 8\nexit", "xdp", name="extra")
    assert runtime.run("p", packet=frame()).r0 == 0  # an unknown name is an empty slot
    runtime.maps["jt"].update(2, target)
    assert runtime.run("p", packet=frame()).r0 == 8


def test_tail_call_needs_a_runtime() -> None:
    program = assemble("mov %r2, 0\nmov %r3, 0\ncall bpf_tail_call\nexit")
    with pytest.raises(HelperUnavailable, match="bpf_tail_call"):
        Interpreter(program).run()


def test_tail_call_trace_follows_the_switch() -> None:
    runtime = tail_runtime({"a": "mov %r6, %r1\n" + call(0) + "exit", "b": "mov %r0, 3\nexit"}, [(0, "b")])
    result = runtime.run("a", packet=frame(), trace=True)
    assert [e.pc for e in result.steps] == [0, 1, 2, 4, 5, 0, 1]
    assert result.executed == len(result.steps) == 7


# -- bpf_loop -------------------------------------------------------------------------------------
LOOP = """
    stdw [%r10-8], 0
    mov %r1, {count}
    lddw %r2, func cb
    mov %r3, %r10
    add %r3, -8
    mov %r4, {flags}
    mov %r6, 66
    call bpf_loop
    ldxdw %r7, [%r10-8]
    exit
cb:
    ldxdw %r3, [%r2+0]
    add %r3, %r1
    stxdw [%r2+0], %r3
    mov %r0, 0
    jne %r1, {stop}, out
    mov %r0, 1
out:
    exit
"""


def loop(count: int, stop: int = -1, flags: int = 0, **kwargs):  # type: ignore[no-untyped-def]
    program = assemble(LOOP.format(count=count, stop=stop, flags=flags))
    result = run_program(program, trace=True, **kwargs)
    return result.r0, result.steps[-1].regs[7], result


def test_bpf_loop_runs_the_callback() -> None:
    r0, total, result = loop(10)
    assert (r0, total) == (10, 45)
    assert result.steps[-1].regs[6] == 66  # the caller's registers survive
    assert max(e.depth for e in result.steps) == 1


def test_bpf_loop_stops_when_the_callback_returns_1() -> None:
    assert loop(10, stop=3)[:2] == (4, 0 + 1 + 2 + 3)


def test_bpf_loop_zero_iterations() -> None:
    r0, total, result = loop(0)
    assert (r0, total) == (0, 0)
    assert all(e.depth == 0 for e in result.steps)


@pytest.mark.parametrize("count,flags,r0", [((1 << 23) + 1, 0, -errno.E2BIG & MASK64), (3, 1, -errno.EINVAL & MASK64),
                                            (-1, 0, -errno.E2BIG & MASK64)])
def test_bpf_loop_argument_errors(count: int, flags: int, r0: int) -> None:
    assert loop(count, flags=flags)[:2] == (r0, 0)


def test_bpf_loop_count_is_a_u32() -> None:
    program = assemble(LOOP.format(count=0, stop=-1, flags=0).replace("mov %r1, 0", "lddw %r1, 0x100000002"))
    assert run_program(program).r0 == 2


def test_bpf_loop_shares_the_budget() -> None:
    with pytest.raises(BudgetExhausted) as info:
        loop(1 << 23, budget=10_000)
    assert info.value.executed == 10_000
    _, _, result = loop(10)
    assert result.executed == len(result.steps) == 8 + 10 * 6 + 1 + 1  # caller, 10 callbacks, 1 stop, tail


def test_bpf_loop_callback_must_be_a_function() -> None:
    program = assemble("mov %r1, 1\nmov %r2, 12345\nmov %r3, 0\nmov %r4, 0\ncall bpf_loop\nexit")
    with pytest.raises(BadCallback, match="0x3039 is not the address of a subprogram"):
        run_program(program)


def test_bpf_loop_in_a_plain_interpreter_and_nested() -> None:
    text = """
        stdw [%r10-8], 0
        mov %r1, 3
        lddw %r2, func outer
        mov %r3, %r10
        add %r3, -8
        mov %r4, 0
        call bpf_loop
        ldxdw %r0, [%r10-8]
        exit
    outer:
        mov %r3, %r2
        mov %r1, 4
        lddw %r2, func inner
        mov %r4, 0
        call bpf_loop
        mov %r0, 0
        exit
    inner:
        ldxdw %r3, [%r2+0]
        add %r3, 1
        stxdw [%r2+0], %r3
        mov %r0, 0
        exit
    """
    assert Interpreter(assemble(text)).run().r0 == 12


def test_tail_call_inside_a_callback_is_refused() -> None:
    maps = (prog_array("jt", 1),)
    text = """
        mov %r1, 1
        lddw %r2, func cb
        mov %r3, 0
        mov %r4, 0
        call bpf_loop
        exit
    cb:
        lddw %r2, map_fd 0
        mov %r3, 0
        call bpf_tail_call
        mov %r0, 0
        exit
    """
    with pytest.raises(HelperUnavailable, match="not allowed inside a callback"):
        run_program(typed(text, "xdp", maps=maps), packet=frame())


# -- bpf_for_each_map_elem ---------------------------------------------------------------------------
FOR_EACH = """
    stdw [%r10-8], 0
    lddw %r1, map_fd 0
    lddw %r2, func cb
    mov %r3, %r10
    add %r3, -8
    mov %r4, {flags}
    call bpf_for_each_map_elem
    ldxdw %r7, [%r10-8]
    exit
cb:
    ldxw %r6, [%r2+0]
    ldxdw %r5, [%r3+0]
    ldxdw %r0, [%r4+0]
    add %r0, %r5
    stxdw [%r4+0], %r0
    lsh %r5, 1
    stxdw [%r3+0], %r5
    mov %r0, 0
    jne %r6, {stop}, out
    mov %r0, 1
out:
    exit
"""


def for_each(definition: MapDefinition, entries: dict[int, int], stop: int = -1, flags: int = 0):
    program = typed(FOR_EACH.format(stop=stop, flags=flags), "xdp", maps=(definition,))
    runtime = Runtime([program])
    for key, value in entries.items():
        runtime.maps[definition.name].update(u32(key), u64(value))
    result = runtime.run(program, packet=frame(), trace=True)
    values = {struct.unpack("<I", k)[0]: struct.unpack("<Q", v)[0] for k, v in runtime.maps[definition.name].items()}
    return result.r0, result.steps[-1].regs[7], values


def test_for_each_array_element() -> None:
    r0, total, values = for_each(array("a", 4), {0: 1, 1: 2, 2: 3, 3: 4})
    assert (r0, total) == (4, 10)
    assert values == {0: 2, 1: 4, 2: 6, 3: 8}  # the callback wrote the map's own values


def test_for_each_stops_early() -> None:
    r0, total, values = for_each(array("a", 4), {0: 1, 1: 2, 2: 3, 3: 4}, stop=1)
    assert (r0, total, values) == (2, 3, {0: 2, 1: 4, 2: 3, 3: 4})


def test_for_each_hash_element() -> None:
    r0, total, values = for_each(hash_map("h"), {7: 10, 9: 20, 11: 30})
    assert (r0, total, values) == (3, 60, {7: 20, 9: 40, 11: 60})
    assert for_each(hash_map("h"), {})[:2] == (0, 0)


def test_for_each_flags_and_key_is_read_only() -> None:
    assert for_each(array("a", 2), {}, flags=1)[0] == -errno.EINVAL & MASK64
    text = FOR_EACH.format(stop=-1, flags=0).replace("ldxw %r6, [%r2+0]", "stw [%r2+0], 1")
    with pytest.raises(MemoryFault, match="for_each key 0 .*read-only"):
        run_program(typed(text, "xdp", maps=(array("a", 2),)), packet=frame())


def test_for_each_percpu_array_sees_this_cpus_values() -> None:
    definition = MapDefinition("p", "percpu_array", 4, 8, 2)
    program = typed(FOR_EACH.format(stop=-1, flags=0), "xdp", maps=(definition,))
    runtime = Runtime([program])
    runtime.maps["p"].update(u32(0), [u64(1), u64(100)])
    runtime.maps["p"].update(u32(1), [u64(2), u64(200)])
    result = runtime.run(program, packet=frame(), trace=True)
    assert result.steps[-1].regs[7] == 3  # CPU 0's values
    assert runtime.maps["p"].lookup(u32(1)) == [u64(4), u64(200)]


def test_for_each_unsupported_map_type() -> None:
    with pytest.raises(HelperUnavailable, match="not supported for prog_array maps"):
        run_program(typed(FOR_EACH.format(stop=-1, flags=0), "xdp", maps=(prog_array("jt", 2),)), packet=frame())
