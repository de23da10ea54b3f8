"""Running kernel work in a forked child process.

Why: the verifier of the kernel we test against has a bug that Oopses while
checking certain generated programs, and an Oops kills the process that made
the bpf() call.  Loading generated or untrusted programs from a child turns
that into a result ("crashed, signal 11") instead of the end of the test run.
A child that hangs is killed after a timeout.

The child is a plain ``os.fork()``: the callable needs no pickling, only its
result (or exception) does, and it comes back through a pipe.  Fork copies
only the calling thread, so the callable should not rely on other threads
or locks they might hold (ctypes syscalls and pickling are fine).
"""

from __future__ import annotations

import os
import pickle
import select
import signal as _signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ebpfvm.errors import EbpfvmError
from ebpfvm.kernel.errors import KernelError, KernelVerifierError
from ebpfvm.kernel.log import VerifierStats
from ebpfvm.kernel.maps import create_map
from ebpfvm.kernel.prog import (
    DEFAULT_LOG_SIZE,
    _check_insns,
    load_program,
    relocate_map_indices,
)

T = TypeVar("T")

# How long to wait for a killed child to be reaped.  A child stuck in the
# kernel (uninterruptible sleep after an Oops) may never be; we then give up
# and leave it rather than hang the parent.
_REAP_GRACE = 5.0
_CHILD_FAILED_TO_REPORT = 70  # EX_SOFTWARE


class ChildCrashed(EbpfvmError):
    """The child died without reporting a result: killed by ``signal``,
    exited with non-zero ``exit_status``, or ``timed_out`` and was killed.
    ``reaped`` is False if even SIGKILL did not make it exit in time."""

    def __init__(self, signal: int | None, exit_status: int | None,
                 timed_out: bool = False, reaped: bool = True) -> None:
        self.signal = signal
        self.exit_status = exit_status
        self.timed_out = timed_out
        self.reaped = reaped
        super().__init__(_describe_death(signal, exit_status, timed_out, reaped))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.signal, self.exit_status, self.timed_out, self.reaped))


class ChildError(EbpfvmError):
    """The child raised an exception that could not be sent back as itself;
    this carries its type name, message and formatted traceback."""

    def __init__(self, type_name: str, message: str, child_traceback: str) -> None:
        self.type_name = type_name
        self.message = message
        self.child_traceback = child_traceback
        super().__init__(f"child raised {type_name}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.type_name, self.message, self.child_traceback))


def _describe_death(signal: int | None, exit_status: int | None, timed_out: bool, reaped: bool) -> str:
    if timed_out:
        text = "child timed out and was killed"
        return text if reaped else text + " (but did not exit; left unreaped)"
    if signal is not None:
        try:
            name = _signal.Signals(signal).name
        except ValueError:
            name = f"signal {signal}"
        return f"child killed by {name} ({signal})"
    return f"child exited with status {exit_status} without a result"


# --- the generic fork runner -------------------------------------------------


def _exception_payload(exc: BaseException) -> bytes:
    tb = "".join(traceback.format_exception(exc))
    try:
        data = pickle.dumps(("exc", exc, tb))
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
        return data
    except Exception:  # noqa: BLE001 - any failure means: send a stand-in
        return pickle.dumps(("exc", ChildError(type(exc).__qualname__, str(exc), tb), tb))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _child_main(write_fd: int, fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> None:
    """Runs in the child; never returns."""
    code = _CHILD_FAILED_TO_REPORT
    try:
        try:
            data = pickle.dumps(("ok", fn(*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            data = _exception_payload(exc)
        _write_all(write_fd, data)
        code = 0
    finally:
        # _exit: no atexit handlers, no flushing of the parent's copied
        # buffers, no pytest teardown running twice.
        os._exit(code)


def _reap(pid: int, deadline: float) -> int | None:
    """waitpid with a deadline; the raw status, or None if still running."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def run_in_child(fn: Callable[..., T], /, *args: Any, timeout: float = 30.0, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a forked child; its return value.

    An exception in the child is raised here (the same exception if it
    pickles, else ChildError); a child that dies by a signal, exits without
    a result or runs past ``timeout`` seconds raises ChildCrashed.
    """
    read_fd, write_fd = os.pipe()
    # Flush so buffered output is not written twice (once by each process).
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        _child_main(write_fd, fn, args, kwargs)
    os.close(write_fd)

    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    status: int | None = None
    timed_out = False
    reaped = True
    # poll, not select: select cannot watch fds >= 1024, which a long fuzzing
    # run with many open maps can reach.
    poller = select.poll()
    poller.register(read_fd, select.POLLIN)
    try:
        # Read while waiting so a large result cannot fill the pipe and block
        # the child; EOF means the child has finished (or died).
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not poller.poll(max(1, int(remaining * 1000))):
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        if not timed_out:
            # After EOF the child only has to exit; give it the rest of the
            # timeout (at least the grace period) before declaring it hung.
            status = _reap(pid, max(deadline, time.monotonic() + _REAP_GRACE))
            timed_out = status is None
    finally:
        os.close(read_fd)
        if status is None:  # timed out, or we were interrupted (KeyboardInterrupt...)
            try:
                os.kill(pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
            status = _reap(pid, time.monotonic() + _REAP_GRACE)
            reaped = status is not None

    if timed_out:
        raise ChildCrashed(None, None, timed_out=True, reaped=reaped)
    assert status is not None
    if os.WIFSIGNALED(status):
        raise ChildCrashed(os.WTERMSIG(status), None)
    exit_status = os.WEXITSTATUS(status)
    data = b"".join(chunks)
    if exit_status != 0 or not data:
        raise ChildCrashed(None, exit_status)
    kind, value, *rest = pickle.loads(data)
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    if rest and hasattr(value, "add_note"):
        value.add_note("child traceback:\n" + rest[0])
    raise value


# --- load-and-run convenience -----------------------------------------------


@dataclass(frozen=True)
class MapSpec:
    """A map to create in the child before loading; ``initial`` entries are
    written into it first.  Programs refer to map i by index (see
    :func:`load_and_run_isolated`)."""

    map_type: int | str
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    name: str = ""
    initial: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True)
class Accepted:
    """The verifier accepted the program.  ``retval`` etc. come from one
    BPF_PROG_TEST_RUN (None when not run, or when the run itself failed:
    then ``run_errno`` says why); ``maps`` holds every map's contents after
    the run, in MapSpec order."""

    log: str
    stats: VerifierStats | None
    retval: int | None = None
    data_out: bytes = b""
    ctx_out: bytes | None = None
    duration_ns: int = 0
    maps: tuple[dict[bytes, bytes], ...] = field(default=(), hash=False)
    run_errno: int | None = None

    kind = "accepted"


@dataclass(frozen=True)
class Rejected:
    """BPF_PROG_LOAD refused the program."""

    errno: int
    error_line: str
    log: str
    stats: VerifierStats | None

    kind = "rejected"


@dataclass(frozen=True)
class Crashed:
    """The loading process died (kernel Oops, signal) or hung past the timeout."""

    signal: int | None
    exit_status: int | None
    timed_out: bool = False
    detail: str = ""

    kind = "crashed"


Outcome = Accepted | Rejected | Crashed


def _load_and_run(insns: bytes, prog_type: int | str, data_in: bytes, ctx_in: bytes | None,
                  maps: Sequence[MapSpec], run: bool, repeat: int | None,
                  load_kwargs: dict[str, Any]) -> Accepted | Rejected:
    """Runs in the child: create maps, load, run, read maps back."""
    created = []
    for spec in maps:
        m = create_map(spec.map_type, spec.key_size, spec.value_size, spec.max_entries,
                       spec.flags, spec.name)
        created.append(m)
        for key, value in spec.initial:
            m.update(key, value)
    fds = [m.fd for m in created]
    if fds:
        insns = relocate_map_indices(insns, fds)
    try:
        prog = load_program(insns, prog_type, fd_array=fds, **load_kwargs)
    except KernelVerifierError as e:
        return Rejected(e.errno, e.error_line, e.log, e.stats)
    # No closing needed: the child exits right after, which closes every fd.
    if not run:
        return Accepted(prog.log, prog.stats, maps=tuple(m.dump() for m in created))
    try:
        res = prog.test_run(data_in, ctx_in=ctx_in, repeat=repeat)
    except KernelError as e:
        return Accepted(prog.log, prog.stats, maps=tuple(m.dump() for m in created),
                        run_errno=e.errno)
    return Accepted(prog.log, prog.stats, res.retval, res.data_out, res.ctx_out,
                    res.duration_ns, tuple(m.dump() for m in created))


def load_and_run_isolated(
    insns: bytes,
    prog_type: int | str = "socket_filter",
    data_in: bytes = b"",
    *,
    ctx_in: bytes | None = None,
    maps: Sequence[MapSpec] = (),
    run: bool = True,
    repeat: int | None = None,
    timeout: float = 30.0,
    license: str = "GPL",
    log_level: int = 1,
    stats: bool = True,
    expected_attach_type: int | str = 0,
    prog_flags: int = 0,
    log_size: int = DEFAULT_LOG_SIZE,
) -> Outcome:
    """Load ``insns`` (and test-run it unless ``run=False``) in a child.

    Returns Accepted, Rejected or Crashed; never lets a kernel crash take
    this process down.  When ``maps`` are given, map i is created in the
    child and the program refers to it by index: ld_imm64 with src_reg
    BPF_PSEUDO_MAP_FD/MAP_VALUE and ``imm = i`` (rewritten to the child's
    fd), or BPF_PSEUDO_MAP_IDX/IDX_VALUE (resolved by the kernel through
    fd_array).  Setup failures (a map the kernel won't create, bad
    arguments) raise as exceptions rather than becoming outcomes.
    """
    _check_insns(insns)  # report malformed input here, not from the child
    load_kwargs: dict[str, Any] = {
        "license": license, "log_level": log_level, "stats": stats,
        "expected_attach_type": expected_attach_type, "prog_flags": prog_flags,
        "log_size": log_size,
    }
    try:
        return run_in_child(_load_and_run, bytes(insns), prog_type, bytes(data_in), ctx_in,
                            tuple(maps), run, repeat, load_kwargs, timeout=timeout)
    except ChildCrashed as e:
        return Crashed(e.signal, e.exit_status, e.timed_out, str(e))
