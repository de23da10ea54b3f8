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
