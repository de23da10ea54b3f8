"""The current task and the derived clocks: get_current_pid_tgid/uid_gid/comm,
ktime_get_boot_ns, ktime_get_coarse_ns, jiffies64."""

from __future__ import annotations

import struct

import pytest

from ebpfvm import assemble, run
from ebpfvm.helpers import ArgKind, HelperEnv, Prototype, RetKind, StepClock, Task, default_registry

TASK = Task(pid=1001, tgid=1000, uid=1234, gid=5678, comm="worker-3")


def test_pid_tgid_puts_the_process_id_on_top() -> None:
    result = run(assemble("call bpf_get_current_pid_tgid\nexit"), env=HelperEnv(task=TASK))
    assert result.r0 == 1000 << 32 | 1001 == 0x3E8_0000_03E9


def test_uid_gid_puts_the_group_on_top() -> None:
    result = run(assemble("call bpf_get_current_uid_gid\nexit"), env=HelperEnv(task=TASK))
    assert result.r0 == 5678 << 32 | 1234


def test_default_task() -> None:
    env = HelperEnv()
    assert (env.task.pid, env.task.tgid, env.task.uid, env.task.gid, env.task.comm) == (4242, 4242, 0, 0, b"ebpfvm")


def _comm_into_mem(size: int, comm: str | bytes, mem: bytes) -> tuple[int, bytes]:
    # r1 points at the input memory: the helper writes the name there.
    result = run(assemble(f"mov %r2, {size}\ncall bpf_get_current_comm\nexit"), mem,
                 env=HelperEnv(task=Task(comm=comm)))
    return result.r0, result.mem


@pytest.mark.parametrize("size, expected", [
    (16, b"worker-3" + bytes(8)),   # the name, its NUL, zeros to the end
    (24, b"worker-3" + bytes(16)),  # bigger than TASK_COMM_LEN: still zero-padded
    (9, b"worker-3\0"),             # exactly fits
    (8, b"worker-\0"),              # cut: size - 1 bytes and a NUL
    (4, b"wor\0"),
    (1, b"\0"),
])
def test_comm_is_copied_cut_and_padded_like_strscpy_pad(size: int, expected: bytes) -> None:
    r0, mem = _comm_into_mem(size, "worker-3", b"\xff" * 32)
    assert r0 == 0  # even when cut
    assert mem == expected + b"\xff" * (32 - size)  # nothing past size is touched


def test_comm_of_fifteen_bytes() -> None:
    r0, mem = _comm_into_mem(16, "abcdefghijklmno", b"\xff" * 16)
    assert (r0, mem) == (0, b"abcdefghijklmno\0")


def test_task_keeps_at_most_fifteen_bytes_of_comm_like_set_task_comm() -> None:
    assert Task(comm="abcdefghijklmnopqrstuvwxyz").comm == b"abcdefghijklmno"
    assert Task(comm=b"ab\0cd").comm == b"ab"
    assert Task(comm="é").comm == "é".encode()


@pytest.mark.parametrize("field", ["pid", "tgid", "uid", "gid"])
def test_task_ids_are_u32(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Task(**{field: 1 << 32})
    with pytest.raises(ValueError, match=field):
        Task(**{field: -1})


# -- clocks ------------------------------------------------------------------------------

def _clock_program(*helpers: str) -> str:
    """Call each helper and store r0 at consecutive u64s of the input memory."""
    lines = ["mov %r6, %r1"]
    for k, name in enumerate(helpers):
        lines += [f"call {name}", f"stxdw [%r6+{8 * k}], %r0"]
    return "\n".join(lines + ["mov %r0, 0", "exit"])


def _clock_readings(env: HelperEnv, *helpers: str) -> list[int]:
    result = run(assemble(_clock_program(*helpers)), bytes(8 * len(helpers)), env=env)
    return list(struct.unpack(f"<{len(helpers)}Q", result.mem))


def test_derived_clocks_with_a_fake_monotonic_clock() -> None:
    # hz=250: a tick is 4 ms; INITIAL_JIFFIES = 2**32 - 300 * 250.
    env = HelperEnv(clock=StepClock(start=10_001_000_000, step=1_000_000), hz=250, suspended_ns=7_000)
    readings = _clock_readings(env, "bpf_ktime_get_ns", "bpf_ktime_get_boot_ns", "bpf_ktime_get_coarse_ns",
                               "bpf_jiffies64")
    assert readings == [
        10_001_000_000,
        10_002_000_000 + 7_000,   # the next clock reading plus the time suspended
        10_000_000_000,           # 10_003_000_000 rounded down to a 4 ms tick
        4_294_892_296 + 2_501,    # INITIAL_JIFFIES + 10_004_000_000 // 4_000_000
    ]


def test_boot_time_leads_monotonic_by_default() -> None:
    env = HelperEnv(clock=StepClock(start=500, step=0))
    mono, boot = _clock_readings(env, "bpf_ktime_get_ns", "bpf_ktime_get_boot_ns")
    assert boot - mono == env.suspended_ns == 1_000_000_000


def test_boot_clock_can_be_injected() -> None:
    env = HelperEnv(clock=StepClock(start=5), boot_clock=StepClock(start=99, step=2))
    assert _clock_readings(env, "bpf_ktime_get_boot_ns", "bpf_ktime_get_boot_ns", "bpf_ktime_get_ns") == [99, 101, 5]


def test_hz_must_divide_a_second() -> None:
    with pytest.raises(ValueError, match="hz"):
        HelperEnv(hz=7)
    assert HelperEnv(hz=1000).initial_jiffies == 2**32 - 300_000


def test_runs_with_the_same_env_arguments_are_identical() -> None:
    helpers = ("bpf_ktime_get_ns", "bpf_ktime_get_boot_ns", "bpf_ktime_get_coarse_ns", "bpf_jiffies64",
               "bpf_get_prandom_u32", "bpf_get_current_pid_tgid", "bpf_get_current_uid_gid",
               "bpf_get_smp_processor_id")

    def readings() -> list[int]:
        env = HelperEnv(clock=StepClock(start=123_456_789, step=3_000_001), seed=9, cpu_id=1, task=TASK)
        return _clock_readings(env, *helpers)

    assert readings() == readings()


# -- prototypes ----------------------------------------------------------------------

def test_prototypes_follow_the_kernel() -> None:
    registry = default_registry()
    no_args = Prototype(RetKind.INTEGER, ())
    for helper_id in (14, 15, 118, 125, 160):
        assert registry[helper_id].proto == no_args
    comm = registry[16]
    assert comm.name == "bpf_get_current_comm"
    assert comm.proto.args == (ArgKind.PTR_TO_UNINIT_MEM, ArgKind.CONST_SIZE)
    assert not comm.proto.gpl_only
