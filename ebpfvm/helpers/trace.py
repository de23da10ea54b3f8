"""Formatted output: bpf_trace_printk (captured in ``env.trace_log``) and
bpf_snprintf. The format rules and rendering live in ``bprintf``.

bpf_trace_printk(fmt, fmt_size, a1, a2, a3): ``fmt`` must hold a NUL within
``fmt_size`` bytes; at most three conversions. The line is formatted into the
kernel's 1024-byte buffer and what precedes its first NUL becomes the
message (trace_pipe shows it after ``bpf_trace_printk: ``). Returns the
length the whole text would have had, or -EINVAL / -ENOSPC.

bpf_snprintf(str, str_size, fmt, data, data_len): ``fmt`` is a constant
string, the arguments are ``data_len / 8`` u64s at ``data`` (at most 12).
Writes at most ``str_size`` bytes, always NUL-terminated when str_size > 0,
and returns the length of the whole text plus one for the NUL.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from .bprintf import MAX_ARGS, OUTPUT_SIZE, PointerStyle, prepare, render
from .probe import UnsafeMemory
from .prototype import ArgFlag, ArgKind, Prototype, RetKind
from .registry import HelperRegistry
from .strings import read_const_string

if TYPE_CHECKING:
    from ..interp.machine import Machine
    from .env import HelperEnv

BPF_TRACE_PRINTK = 6
BPF_SNPRINTF = 165

TRACE_PRINTK_ARGS = 3  # MAX_TRACE_PRINTK_VARARGS


def pointer_style(env: "HelperEnv") -> PointerStyle:
    return PointerStyle(env.hash_pointer, env.hash_pointers, env.kptr_restrict)


def format_message(machine: "Machine", fmt: bytes, args: list[int], size: int) -> tuple[bytes, int] | int:
    """Format ``fmt`` with ``args`` into ``size`` bytes: (written bytes,
    full length) or a negative errno."""
    packed = prepare(fmt, args, UnsafeMemory(machine))
    if isinstance(packed, int):
        return packed
    return render(fmt, packed, size, pointer_style(machine.env))


def trace_printk(machine: "Machine", fmt_ptr: int, fmt_size: int, a1: int, a2: int, a3: int) -> int:
    raw = machine.memory.read_bytes(fmt_ptr, fmt_size & 0xFFFF_FFFF, machine.pc)
    nul = raw.find(0)
    if nul < 0:
        return -errno.EINVAL
    result = format_message(machine, raw[:nul], [a1, a2, a3], OUTPUT_SIZE)
    if isinstance(result, int):
        return result
    written, length = result
    message = written.split(b"\0", 1)[0]
    # surrogateescape: UTF-8 reads naturally and any other byte survives a round trip.
    machine.env.trace_log.append(message.decode("utf-8", "surrogateescape"))
    return length


def snprintf(machine: "Machine", out: int, out_size: int, fmt_ptr: int, data: int, data_len: int) -> int:
    out_size &= 0xFFFF_FFFF
    data_len &= 0xFFFF_FFFF
    if data_len % 8 or data_len > 8 * MAX_ARGS or (data_len and not data):
        return -errno.EINVAL
    fmt = read_const_string(machine, fmt_ptr)
    raw_args = machine.memory.read_bytes(data, data_len, machine.pc)
    args = list(struct.unpack(f"<{data_len // 8}Q", raw_args))
    if out_size:
        machine.memory.locate(out, out_size, True, machine.pc)  # ARG_PTR_TO_MEM: all of it
    result = format_message(machine, fmt, args, out_size)
    if isinstance(result, int):
        return result
    written, length = result
    machine.memory.write_bytes(out, written, machine.pc)
    return length + 1


# kernel/trace/bpf_trace.c and kernel/bpf/helpers.c.
TRACE_PRINTK_PROTO = Prototype(RetKind.INTEGER, (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE), gpl_only=True,
                               arg_flags=(ArgFlag.RDONLY, ArgFlag.NONE))
SNPRINTF_PROTO = Prototype(
    RetKind.INTEGER,
    (ArgKind.PTR_TO_MEM, ArgKind.CONST_SIZE_OR_ZERO, ArgKind.PTR_TO_CONST_STR, ArgKind.PTR_TO_MEM,
     ArgKind.CONST_SIZE_OR_ZERO),
    gpl_only=True,
    arg_flags=(ArgFlag.MAYBE_NULL, ArgFlag.NONE, ArgFlag.NONE, ArgFlag.MAYBE_NULL | ArgFlag.RDONLY, ArgFlag.NONE),
)


def register(registry: HelperRegistry) -> HelperRegistry:
    registry.register(BPF_TRACE_PRINTK, trace_printk, proto=TRACE_PRINTK_PROTO)
    registry.register(BPF_SNPRINTF, snprintf, proto=SNPRINTF_PROTO)
    return registry
