"""The world outside the program that helpers observe.

Everything here is injectable so that runs are reproducible: tests pass a fake
clock, a seed, a task and memory contents; the interpreter and the JIT given
the same ``HelperEnv`` see the same values.

* Time: ``clock`` is CLOCK_MONOTONIC (``bpf_ktime_get_ns``). The boot-time
  clock (``bpf_ktime_get_boot_ns``) is monotonic plus the time spent
  suspended, the coarse clock (``bpf_ktime_get_coarse_ns``) is monotonic
  rounded down to the last timer tick, and ``bpf_jiffies64`` counts ticks
  from the kernel's ``INITIAL_JIFFIES``. All are derived from ``clock`` so
  they never contradict each other; ``boot_clock`` overrides the first.
* The current task: ``Task`` (pid, tgid, uid, gid, comm).
* Memory outside the program, for ``bpf_probe_read_*`` and ``%s``/``%pI4``
  in ``bpf_trace_printk``: two address spaces, ``kernel_memory`` and
  ``user_memory``, each a ``MemoryMap`` of named regions that the caller
  fills (``env.kernel_memory.add_region("task", KERNEL_SPACE_HINT, data)``).
  A kernel read also sees the program's own regions (stack, context, map
  values), since those are kernel memory to the real kernel; a user read
  sees only ``user_memory``. Keep user regions away from the program's
  layout (``ebpfvm.memory``): ``USER_SPACE_HINT`` is a good base.
* Output: ``trace_log`` collects each ``bpf_trace_printk`` message as the
  text after ``bpf_trace_printk: `` in trace_pipe (a message ending in a
  newline keeps it). It accumulates across runs; clear it when you like.
* How ``%p`` prints: the kernel hashes pointers with a boot-time random key;
  here the key is ``pointer_key`` (fixed by default), ``hash_pointers=False``
  is the kernel's ``no_hash_pointers`` and ``kptr_restrict`` its sysctl.
* Per-run state (the spin lock a program holds) is reset by ``begin_run``,
  which the interpreter calls at the start of every run.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from ..memory import MemoryMap

NSEC_PER_SEC = 1_000_000_000
DEFAULT_HZ = 250  # CONFIG_HZ of common distribution kernels (and of the test machine)
DEFAULT_SUSPENDED_NS = 1_000_000_000  # boot time runs this far ahead of monotonic time
TASK_COMM_LEN = 16  # bytes of task->comm, NUL included

# Where to put simulated memory so addresses look like the kernel's and never
# meet the program's own regions (see ebpfvm.memory for that layout).
KERNEL_SPACE_HINT = 0xFFFF_8880_0000_0000  # x86-64 direct map
USER_SPACE_HINT = 0x0000_7F00_0000_0000  # where x86-64 user space maps libraries

_U32 = 0xFFFF_FFFF


@dataclass(frozen=True)
class Task:
    """The task a program runs on behalf of (``current`` in the kernel).

    ``comm`` may be str (UTF-8) or bytes; like ``set_task_comm`` it keeps at
    most ``TASK_COMM_LEN - 1`` bytes and stops at a NUL.
    """

    pid: int = 4242  # the thread id
    tgid: int = 4242  # the process id
    uid: int = 0
    gid: int = 0
    comm: bytes = field(default=b"ebpfvm")

    def __post_init__(self) -> None:
        for name in ("pid", "tgid", "uid", "gid"):
            value = getattr(self, name)
            if not 0 <= value <= _U32:
                raise ValueError(f"Task.{name} must be a u32, got {value}")
        comm = self.comm.encode() if isinstance(self.comm, str) else bytes(self.comm)
        comm = comm.split(b"\0", 1)[0][:TASK_COMM_LEN - 1]
        object.__setattr__(self, "comm", comm)


class StepClock:
    """A fake monotonic clock: ``start``, then ``step`` more on every reading."""

    def __init__(self, start: int = 0, step: int = 1) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        value = self.now
        self.now += self.step
        return value


class HelperEnv:
    """Per-run state of the helpers that need no maps (see the module doc).

    ``clock`` returns monotonic nanoseconds (``bpf_ktime_get_ns``); ``seed``
    seeds ``bpf_get_prandom_u32`` (None: unpredictable); ``cpu_id`` is what
    ``bpf_get_smp_processor_id`` reports; ``task`` is the current task.
    """

    def __init__(self, *, clock: Callable[[], int] = time.monotonic_ns, seed: int | None = None,
                 cpu_id: int = 0, task: Task | None = None, boot_clock: Callable[[], int] | None = None,
                 suspended_ns: int = DEFAULT_SUSPENDED_NS, hz: int = DEFAULT_HZ,
                 kernel_memory: MemoryMap | None = None, user_memory: MemoryMap | None = None,
                 hash_pointers: bool = True, kptr_restrict: int = 0,
                 pointer_key: bytes = b"ebpfvm pointer key") -> None:
        if hz <= 0 or NSEC_PER_SEC % hz:
            raise ValueError(f"hz must divide one second evenly, got {hz}")
        self.clock = clock
        self.seed = seed
        self.random = random.Random(seed)
        self.cpu_id = cpu_id
        self.task = task if task is not None else Task()
        self.boot_clock = boot_clock
        self.suspended_ns = suspended_ns
        self.hz = hz
        self.kernel_memory = kernel_memory if kernel_memory is not None else MemoryMap()
        self.user_memory = user_memory if user_memory is not None else MemoryMap()
        self.hash_pointers = hash_pointers
        self.kptr_restrict = kptr_restrict
        self.pointer_key = pointer_key
        self.trace_log: list[str] = []
        # Address of the bpf_spin_lock the running program holds (locks.py).
        self.held_lock: int | None = None

    def begin_run(self) -> None:
        """Forget the previous run's per-run state (a lock left held by a run
        that faulted must not leak into the next one)."""
        self.held_lock = None

    # -- clocks ------------------------------------------------------------------
    @property
    def tick_ns(self) -> int:
        return NSEC_PER_SEC // self.hz

    @property
    def initial_jiffies(self) -> int:
        """INITIAL_JIFFIES on 64-bit kernels: 300 s before the 32-bit wrap."""
        return (-300 * self.hz) & _U32

    def boot_ns(self) -> int:
        """CLOCK_BOOTTIME: monotonic time plus the time spent suspended."""
        if self.boot_clock is not None:
            return self.boot_clock()
        return self.clock() + self.suspended_ns

    def coarse_ns(self) -> int:
        """Monotonic time as of the last timer tick."""
        now = self.clock()
        return now - now % self.tick_ns

    def jiffies64(self) -> int:
        return self.initial_jiffies + self.clock() // self.tick_ns

    # -- pointers as %p prints them --------------------------------------------------
    def hash_pointer(self, value: int) -> int:
        """The 32-bit id ``%p`` prints for ``value`` (the kernel's siphash of
        the pointer, keyed here by ``pointer_key``, masked to 32 bits)."""
        digest = hashlib.blake2b(value.to_bytes(8, "little"), digest_size=4, key=self.pointer_key[:64])
        return int.from_bytes(digest.digest(), "little")
