"""Tracing program types: kprobes, tracepoints, raw tracepoints.

Their contexts are plain buffers the kernel hands over without rewriting:

* kprobe (also kretprobe, uprobe): ``struct pt_regs`` of x86_64, 21 u64
  registers. Any aligned load of 1, 2, 4 or 8 bytes inside the struct
  (``kprobe_prog_is_valid_access``); stores are refused (the 6.18 sources
  have a path for writable uprobe contexts, the kernels it runs on refuse a
  store at load time).
* tracepoint: the raw trace record. Reads only, aligned, at offsets 8 to
  2047: the first 8 bytes (the common fields) are off limits
  (``tp_prog_is_valid_access``).
* raw_tracepoint: ``u64 args[12]``, read only (``bpf_tracing_ctx_access``).

The runtime fills the buffer from the caller's context bytes (zero-padded).
"""

from __future__ import annotations

from .base import (ANY_SIZE, BASE_HELPERS, ContextInputError, ContextLayout, ContextSetup, CtxField, ProgType,
                   check_ctx_input, helper_ids)

# struct pt_regs on x86_64, in memory order.
PT_REGS_X86_64 = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di",
                  "orig_ax", "ip", "cs", "flags", "sp", "ss")
PT_REGS = ContextLayout("pt_regs", 8 * len(PT_REGS_X86_64),
                        tuple(CtxField(name, 8 * i, 8, ANY_SIZE) for i, name in enumerate(PT_REGS_X86_64)))

PERF_MAX_TRACE_SIZE = 2048
TRACEPOINT_RECORD = ContextLayout("tracepoint record", PERF_MAX_TRACE_SIZE,
                                  (CtxField("record", 8, PERF_MAX_TRACE_SIZE - 8, ANY_SIZE),))

MAX_BPF_FUNC_ARGS = 12
RAW_TRACEPOINT_ARGS = ContextLayout("bpf_raw_tracepoint_args", 8 * MAX_BPF_FUNC_ARGS,
                                    tuple(CtxField(f"args[{i}]", 8 * i, 8, ANY_SIZE)
                                          for i in range(MAX_BPF_FUNC_ARGS)))

# bpf_tracing_func_proto (as root): its own few, then bpf_base_func_proto.
TRACING_HELPERS = BASE_HELPERS | helper_ids(("get_smp_processor_id", "probe_read", "probe_read_str",
                                             "get_func_ip", "probe_write_user"))
KPROBE_HELPERS = TRACING_HELPERS | helper_ids(("perf_event_output", "get_stackid", "get_stack",
                                               "override_return", "get_func_ip", "get_attach_cookie"))
TRACEPOINT_HELPERS = TRACING_HELPERS | helper_ids(("perf_event_output", "get_stackid", "get_stack",
                                                   "get_attach_cookie"))


def build_buffer_context(prog_type: ProgType, packet: bytes | None, ctx: bytes | None) -> ContextSetup:
    """The context bytes as given, zero-padded to the struct; no packet."""
    if packet is not None:
        raise ContextInputError(prog_type.name, "takes no packet; give its context bytes instead")
    return ContextSetup(ctx=check_ctx_input(prog_type.name, ctx, prog_type.context.size))


KPROBE = ProgType(name="kprobe", context=PT_REGS, build_context=build_buffer_context, helpers=KPROBE_HELPERS,
                  aliases=("kretprobe", "uprobe", "uretprobe", "ksyscall", "kretsyscall"))
TRACEPOINT = ProgType(name="tracepoint", context=TRACEPOINT_RECORD, build_context=build_buffer_context,
                      helpers=TRACEPOINT_HELPERS, aliases=("tp",))
RAW_TRACEPOINT = ProgType(name="raw_tracepoint", context=RAW_TRACEPOINT_ARGS, build_context=build_buffer_context,
                          helpers=TRACEPOINT_HELPERS, aliases=("raw_tp",))
