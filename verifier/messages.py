"""The kernel's words for the verifier's structural layer, in one place.

Every message here is a ``verbose(env, ...)`` line of ``kernel/bpf/verifier.c``
(Linux 6.18) with its ``printf`` conversions turned into ``str.format``
fields, plus the errno the kernel returns with it.  ``Message.matches`` tells
whether a line from a kernel log is an instance of the template, which is how
the conformance tests decide which recorded verdicts this layer claims.

Two groups:

``STRUCTURAL``
    the passes ``bpf_check`` runs before abstract interpretation, in their
    order: ``add_subprog_and_kfunc``, ``check_subprogs``, ``check_btf_info``
    (no BTF: ``check_abnormal_return``), ``resolve_pseudo_ldimm64``,
    ``check_cfg``.  ``verifier.structure.check_structure`` reports these.
``INSTRUCTION``
    the field checks ``do_check`` makes when it *reaches* an instruction
    (``do_check_insn``, ``check_alu_op``, ``check_cond_jmp_op``,
    ``check_atomic``, ``check_ld_abs``, ``check_ld_imm``).  They only fire on
    explored paths — an instruction with reserved bits set in a branch the
    verifier proves dead is accepted — so they belong to the exploration
    layer, which asks ``verifier.structure.instruction_error`` at each
    instruction it visits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")


@dataclass(frozen=True)
class Message:
    """One kernel log line: ``template`` in ``str.format`` syntax, the errno
    name the failing ``bpf(BPF_PROG_LOAD)`` returns, and the kernel function
    that prints it."""

    template: str
    errno: str = "EINVAL"
    origin: str = ""

    def __call__(self, **fields: object) -> str:
        return self.template.format(**fields)

    @property
    def pattern(self) -> re.Pattern[str]:
        """A regex matching exactly the lines this template can produce."""
        parts, pos = [], 0
        for m in _FIELD.finditer(self.template):
            parts.append(re.escape(self.template[pos:m.start()]))
            spec = m.group(2) or ""
            parts.append("[0-9a-f]+" if spec.endswith("x") else "-?[0-9]+")
            pos = m.end()
        parts.append(re.escape(self.template[pos:]))
        return re.compile("".join(parts))

    def matches(self, line: str | None) -> bool:
        return line is not None and self.pattern.fullmatch(line) is not None


# --- before the verifier: bpf_prog_load (kernel/bpf/syscall.c) -----------------
# insn_cnt == 0 or above the limit: E2BIG with an empty log.
PROG_SIZE = Message("", "E2BIG", "bpf_prog_load")

# --- add_subprog_and_kfunc / add_subprog -------------------------------------
CALLS_NEED_CAP_BPF = Message(
    "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN",
    "EPERM", "add_subprog_and_kfunc")
CALL_TO_INVALID_DESTINATION = Message("call to invalid destination", "EINVAL", "add_subprog")
TOO_MANY_SUBPROGRAMS = Message("too many subprograms", "E2BIG", "add_subprog")

# --- check_subprogs ----------------------------------------------------------
JUMP_OUT_OF_RANGE = Message("jump out of range from insn {insn} to {target}", "EINVAL",
                            "check_subprogs")
LAST_INSN_NOT_EXIT = Message("last insn is not an exit or jmp", "EINVAL", "check_subprogs")

# --- check_btf_info without func_info: check_abnormal_return ----------------
LD_ABS_IN_SUBPROG = Message("LD_ABS is not allowed in subprogs without BTF", "EINVAL",
                            "check_abnormal_return")
TAIL_CALL_IN_SUBPROG = Message("tail_call is not allowed in subprogs without BTF", "EINVAL",
                               "check_abnormal_return")

# --- resolve_pseudo_ldimm64 --------------------------------------------------
LDX_RESERVED = Message("BPF_LDX uses reserved fields", "EINVAL", "resolve_pseudo_ldimm64")
INVALID_LD_IMM64 = Message("invalid bpf_ld_imm64 insn", "EINVAL", "resolve_pseudo_ldimm64")
UNRECOGNIZED_LD_IMM64 = Message("unrecognized bpf_ld_imm64 insn", "EINVAL", "resolve_pseudo_ldimm64")
UNKNOWN_OPCODE = Message("unknown opcode {code:02x}", "EINVAL", "resolve_pseudo_ldimm64")
TOO_MANY_MAPS = Message("The total number of maps per program has reached the limit of {limit}",
                        "E2BIG", "__add_used_map")
DIRECT_VALUE_OFFSET = Message("direct value offset of {off} is not allowed", "EINVAL",
                              "resolve_pseudo_ldimm64")
NO_DIRECT_VALUE = Message("no direct value access support for this map type", "EINVAL",
                          "resolve_pseudo_ldimm64")
# errno: EINVAL for an offset past the value, ENOTSUPP (524, no name in
# userspace) for an array with max_entries != 1 (array_map_direct_value_addr).
BAD_DIRECT_VALUE = Message("invalid access to map value pointer, value_size={value_size} off={off}",
                           "EINVAL", "resolve_pseudo_ldimm64")
ENOTSUPP = "524"

# --- check_cfg / push_insn ---------------------------------------------------
CFG_JUMP_OUT_OF_RANGE = Message("jump out of range from insn {insn} to {target}", "EINVAL", "push_insn")
BACK_EDGE = Message("back-edge from insn {insn} to {target}", "EINVAL", "push_insn")
UNREACHABLE_INSN = Message("unreachable insn {insn}", "EINVAL", "check_cfg")
JUMP_INTO_LDIMM64 = Message("jump into the middle of ldimm64 insn {insn}", "EINVAL", "check_cfg")

STRUCTURAL: tuple[Message, ...] = (
    CALLS_NEED_CAP_BPF, CALL_TO_INVALID_DESTINATION, TOO_MANY_SUBPROGRAMS,
    JUMP_OUT_OF_RANGE, LAST_INSN_NOT_EXIT,
    LD_ABS_IN_SUBPROG, TAIL_CALL_IN_SUBPROG,
    LDX_RESERVED, INVALID_LD_IMM64, UNRECOGNIZED_LD_IMM64, UNKNOWN_OPCODE, TOO_MANY_MAPS,
    DIRECT_VALUE_OFFSET, NO_DIRECT_VALUE, BAD_DIRECT_VALUE,
    BACK_EDGE, UNREACHABLE_INSN, JUMP_INTO_LDIMM64,
)

# --- do_check, at the instruction ------------------------------------------------
ALU_RESERVED = Message("BPF_ALU uses reserved fields", "EINVAL", "check_alu_op")
NEG_RESERVED = Message("BPF_NEG uses reserved fields", "EINVAL", "check_alu_op")
END_RESERVED = Message("BPF_END uses reserved fields", "EINVAL", "check_alu_op")
MOV_RESERVED = Message("BPF_MOV uses reserved fields", "EINVAL", "check_alu_op")
ADDR_SPACE_CAST_BAD_IMM = Message(
    "addr_space_cast insn can only convert between address space 1 and 0", "EINVAL", "check_alu_op")
ADDR_SPACE_CAST_NO_ARENA = Message(
    "addr_space_cast insn can only be used in a program that has an associated arena", "EINVAL",
    "check_alu_op")
STX_RESERVED = Message("BPF_STX uses reserved fields", "EINVAL", "do_check_insn")
ST_RESERVED = Message("BPF_ST uses reserved fields", "EINVAL", "do_check_insn")
ATOMIC_BAD_OP = Message("BPF_ATOMIC uses invalid atomic opcode {imm:02x}", "EINVAL", "check_atomic")
ATOMIC_BAD_SIZE = Message("invalid atomic operand size", "EINVAL", "check_atomic_rmw")
CALL_RESERVED = Message("BPF_CALL uses reserved fields", "EINVAL", "do_check_insn")
JA_RESERVED = Message("BPF_JA uses reserved fields", "EINVAL", "do_check_insn")
EXIT_RESERVED = Message("BPF_EXIT uses reserved fields", "EINVAL", "do_check_insn")
JMP_RESERVED = Message("BPF_JMP/JMP32 uses reserved fields", "EINVAL", "check_cond_jmp_op")
MAY_GOTO_RESERVED = Message("invalid may_goto imm {imm}", "EINVAL", "check_cond_jmp_op")
LD_ABS_NOT_ALLOWED = Message("BPF_LD_[ABS|IND] instructions not allowed for this program type",
                             "EINVAL", "check_ld_abs")
LD_ABS_RESERVED = Message("BPF_LD_[ABS|IND] uses reserved fields", "EINVAL", "check_ld_abs")
LD_IMM64_RESERVED = Message("BPF_LD_IMM64 uses reserved fields", "EINVAL", "check_ld_imm")

INSTRUCTION: tuple[Message, ...] = (
    ALU_RESERVED, NEG_RESERVED, END_RESERVED, MOV_RESERVED, ADDR_SPACE_CAST_BAD_IMM,
    ADDR_SPACE_CAST_NO_ARENA, STX_RESERVED, ST_RESERVED, ATOMIC_BAD_OP, ATOMIC_BAD_SIZE,
    CALL_RESERVED, JA_RESERVED, EXIT_RESERVED, JMP_RESERVED, MAY_GOTO_RESERVED,
    LD_ABS_NOT_ALLOWED, LD_ABS_RESERVED, LD_IMM64_RESERVED,
)


def find_message(line: str | None, group: tuple[Message, ...] = STRUCTURAL + INSTRUCTION) -> Message | None:
    """The template of ``group`` that ``line`` is an instance of, if any."""
    for message in group:
        if message.template and message.matches(line):
            return message
    return None

# --- do_check: abstract interpretation (verifier.transfer / checks / explore) -----
# errno EACCES unless noted: the kernel returns -EACCES for most memory-safety
# rejections and -EINVAL for malformed or unsupported uses.
REG_INVALID = Message("R{reg} is invalid", "EINVAL", "check_reg_arg")
NOT_READ_OK = Message("R{reg} !read_ok", "EACCES", "check_reg_arg")
FP_READ_ONLY = Message("frame pointer is read only", "EACCES", "check_reg_arg")
DIV_BY_ZERO = Message("div by zero", "EINVAL", "check_alu_op")
INVALID_SHIFT = Message("invalid shift {imm}", "EINVAL", "check_alu_op")
INVALID_MEM_ACCESS = Message("R{reg} invalid mem access '{type}'", "EACCES", "check_mem_access")
CTX_ACCESS = Message("invalid bpf_context access off={off} size={size}", "EACCES", "check_ctx_access")
MODIFIED_PTR = Message("dereference of modified {type} ptr R{reg} off={off} disallowed", "EACCES",
                       "__check_ptr_off_reg")
NEGATIVE_PTR_OFF = Message("negative offset {type} ptr R{reg} off={off} disallowed", "EACCES",
                           "__check_ptr_off_reg")
VARIABLE_PTR_ACCESS = Message("variable {type} access var_off={var} disallowed", "EACCES", "__check_ptr_off_reg")
STACK_BOUNDS = Message("invalid{extra} stack R{reg} off={off} size={size}", "EACCES",
                       "check_stack_access_within_bounds")
STACK_VAR_UNBOUNDED = Message("invalid unbounded variable-offset{extra} stack R{reg}", "EACCES",
                              "check_stack_access_within_bounds")
STACK_VAR_BOUNDS = Message("invalid variable-offset{extra} stack R{reg} var_off={var} off={off} size={size}",
                           "EACCES", "check_stack_access_within_bounds")
STACK_READ_UNINIT = Message("invalid read from stack off {off}+{i} size {size}", "EACCES",
                            "check_stack_read_fixed_off")
STACK_VAR_READ_UNINIT = Message("invalid read from stack R{reg} var_off={var}+{i} size {size}", "EACCES",
                                "check_stack_read_var_off")
STACK_INDIRECT_UNINIT = Message("invalid indirect read from stack R{reg} off {off}+{i} size {size}", "EACCES",
                                "check_stack_range_initialized")
SPILL_SIZE = Message("invalid size of register spill", "EACCES", "check_stack_write_fixed_off")
SPILL_STACK_PTR_TO_CALLER = Message("cannot spill pointers to stack into stack frame of the caller", "EINVAL",
                                    "check_stack_write_fixed_off")
FILL_SIZE = Message("invalid size of register fill", "EACCES", "check_stack_read_fixed_off")
MISALIGNED = Message("misaligned {desc}access off {var}+{reg_off}+{off} size {size}", "EACCES",
                     "check_generic_ptr_alignment")
MISALIGNED_PKT = Message("misaligned packet access off {ip}+{var}+{reg_off}+{off} size {size}", "EACCES",
                         "check_pkt_ptr_alignment")
MAP_VALUE_BOUNDS = Message("invalid access to map value, value_size={value_size} off={off} size={size}",
                           "EACCES", "__check_mem_access")
MEM_BOUNDS = Message("invalid access to memory, mem_size={mem_size} off={off} size={size}", "EACCES",
                     "__check_mem_access")
MIN_NEGATIVE = Message("R{reg} min value is negative, either use unsigned or 'var &= const'", "EACCES",
                       "check_mem_region_access")
MIN_OUTSIDE = Message("R{reg} min value is outside of the allowed memory range", "EACCES",
                      "check_mem_region_access")
MAX_OUTSIDE = Message("R{reg} max value is outside of the allowed memory range", "EACCES",
                      "check_mem_region_access")
UNBOUNDED_ACCESS = Message("R{reg} unbounded memory access, make sure to bounds check any such access", "EACCES",
                           "check_mem_region_access")
MAP_WRITE_FORBIDDEN = Message("write into map forbidden, value_size={value_size} off={off} size={size}",
                              "EACCES", "check_map_access_type")
MAP_READ_FORBIDDEN = Message("read from map forbidden, value_size={value_size} off={off} size={size}",
                             "EACCES", "check_map_access_type")
PKT_MIN_NEGATIVE = Message("R{reg} min value is negative, either use unsigned index or do a if (index >=0) check.",
                           "EACCES", "check_packet_access")
PKT_OUTSIDE = Message("R{reg} offset is outside of the packet", "EACCES", "check_packet_access")
PKT_WRITE = Message("cannot write into packet", "EACCES", "check_mem_access")
ATOMIC_STORE_INTO = Message("BPF_ATOMIC stores into R{reg} {type} is not allowed", "EACCES", "check_atomic")
ST_STORE_INTO = Message("BPF_ST stores into R{reg} {type} is not allowed", "EACCES", "check_st")
LD_ABS_NOT_SKB = Message("at the time of BPF_LD_ABS|IND R6 != pointer to skb", "EINVAL", "check_ld_abs")
# pointer arithmetic: adjust_ptr_min_max_vals / adjust_reg_min_max_vals
PTR_ARITH_32 = Message("R{reg} 32-bit pointer arithmetic prohibited", "EACCES", "adjust_ptr_min_max_vals")
PTR_ARITH_NULL = Message("R{reg} pointer arithmetic on {type} prohibited, null-check it first", "EACCES",
                         "adjust_ptr_min_max_vals")
PTR_ARITH_TYPE = Message("R{reg} pointer arithmetic on {type} prohibited", "EACCES", "adjust_ptr_min_max_vals")
PTR_ARITH_OP = Message("R{reg} pointer arithmetic with {op} operator prohibited", "EACCES",
                       "adjust_ptr_min_max_vals")
PTR_BITWISE = Message("R{reg} bitwise operator {op} on pointer prohibited", "EACCES", "adjust_ptr_min_max_vals")
PTR_SUB_FROM_SCALAR = Message("R{reg} tried to subtract pointer from scalar", "EACCES", "adjust_ptr_min_max_vals")
# JITs may not cope with a frame pointer moved by subtraction, so the kernel refuses any, even of a constant.
PTR_SUB_FROM_STACK = Message("R{reg} subtraction from stack pointer prohibited", "EACCES", "adjust_ptr_min_max_vals")
PTR_PTR = Message("R{reg} pointer {op} pointer prohibited", "EACCES", "adjust_reg_min_max_vals")
PTR_MATH_CONST = Message("math between {type} pointer and {value} is not allowed", "EINVAL",
                         "check_reg_sane_offset")
PTR_MATH_UNBOUNDED = Message("math between {type} pointer and register with unbounded min value is not allowed",
                             "EINVAL", "check_reg_sane_offset")
PTR_OUT_OF_BOUNDS = Message("value {value} makes {type} pointer be out of bounds", "EINVAL",
                            "check_reg_sane_offset")
# helpers: check_helper_call / check_func_arg
INVALID_FUNC = Message("invalid func {name}#{id}", "EINVAL", "check_helper_call")
HELPER_NOT_ALLOWED = Message("program of this type cannot use helper {name}#{id}", "EINVAL", "check_helper_call")
ARG_TYPE = Message("R{reg} type={type} expected={expected}", "EACCES", "check_reg_type")
NOT_KNOWN_CONSTANT = Message("R{reg} is not a known constant'", "EACCES", "check_func_arg")
SIZE_NEGATIVE = Message("R{reg} min value is negative, either use unsigned or 'var &= const'", "EACCES",
                        "check_mem_size_reg")
SIZE_UNBOUNDED = Message("R{reg} unbounded memory access, use 'var &= const' or 'if (var < const)'", "EACCES",
                         "check_mem_size_reg")
ZERO_SIZE = Message("R{reg} invalid zero-sized read", "EACCES", "check_mem_size_reg")
STACK_INDIRECT_BOUNDS = Message("invalid indirect access to stack R{reg} off={off} size={size}", "EACCES",
                                "check_stack_access_within_bounds")
MAP_FUNC_MISMATCH = Message("cannot pass map_type {map_type} into func {name}#{id}", "EINVAL",
                            "check_map_func_compatibility")
TAIL_CALL_MAP = Message("expected prog array map for tail call", "EINVAL", "record_func_key")
UNRELEASED_REFERENCE = Message("Unreleased reference id={id} alloc_insn={insn}", "", "check_reference_leak")
REFERENCE_LEAK = Message("BPF_EXIT instruction in main prog would lead to reference leak", "EINVAL",
                         "check_reference_leak")
RELEASE_NO_REF = Message("R{reg} must be referenced when passed to release function", "EINVAL",
                         "check_func_arg")
# calls, exit
CALL_STACK_TOO_DEEP = Message("the call stack of {frames} frames is too deep", "E2BIG", "check_func_call")
COMBINED_STACK = Message("combined stack size of {calls} calls is {size}. Too large", "EACCES",
                         "check_max_stack_depth")
RETURN_STACK_PTR = Message("cannot return stack pointer to the caller", "EINVAL", "prepare_func_exit")
RETURN_RANGE = Message("At program exit the register R0 has {bounds} should have been in [{lo}, {hi}]", "EINVAL",
                       "check_return_code")
RETURN_NOT_SCALAR = Message("At program exit the register R0 is not a known value ({type})", "EACCES",
                            "check_return_code")
CALLBACK_NOT_SCALAR = Message("R0 not a scalar value", "EACCES", "prepare_func_exit")
CALLBACK_RANGE = Message("At callback return the register R0 has {bounds} should have been in [{lo}, {hi}]", "EINVAL",
                         "prepare_func_exit")
# global functions: check_func_call, btf_prepare_func_args, btf_check_func_arg_match, do_check_subprogs
GLOBAL_ASSUMED_VALID = Message("Func#{n} ('{name}') is global and assumed valid.", "", "check_func_call")
GLOBAL_BAD_CALL = Message("Caller passes invalid args into func#{n} ('{name}')", "EINVAL", "check_func_call")
GLOBAL_ARG_NOT_SCALAR = Message("R{reg} is not a scalar", "EINVAL", "btf_check_func_arg_match")
GLOBAL_ARG_NOT_CTX = Message("arg#{arg} expects pointer to ctx", "EINVAL", "btf_check_func_arg_match")
GLOBAL_ARG_SIZE = Message("arg#{arg} reference type('{type}') size cannot be determined: -22", "EINVAL",
                          "btf_prepare_func_args")
GLOBAL_ARG_UNSUPPORTED = Message("Arg#{arg} type {type} in {name}() is not supported yet.", "EINVAL",
                                 "btf_prepare_func_args")
GLOBAL_TOO_MANY_ARGS = Message("Global function {name}() with {n} > {max} args. Buggy compiler.", "EINVAL",
                               "btf_prepare_func_args")
GLOBAL_RETURN_NOT_SCALAR = Message("Global function {name}() doesn't return scalar. Only those are supported.",
                                   "EINVAL", "btf_prepare_func_args")
GLOBAL_VALIDATING = Message("Validating {name}() func#{n}...", "", "do_check_common")
GLOBAL_SAFE = Message("Func#{n} ('{name}') is safe for any args that match its prototype", "",
                      "do_check_subprogs")
SUBPROG_EXIT_NOT_SCALAR = Message("At subprogram exit the register R0 is not a scalar value ({type})", "EINVAL",
                                  "check_return_code")
# exploration
INFINITE_LOOP = Message("infinite loop detected at insn {insn}", "EINVAL", "is_state_visited")
TOO_LARGE = Message("BPF program is too large. Processed {count} insn", "E2BIG", "do_check")
STATS = Message("processed {insns} insns (limit 1000000) max_states_per_insn {max_states} total_states "
                "{total_states} peak_states {peak_states} mark_read {mark_read}", "", "print_verification_stats")
BEYOND_STRUCT = Message("access beyond struct {struct} at off {off} size {size}", "EACCES", "btf_struct_access")
