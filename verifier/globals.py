"""Global functions: checked against their BTF prototype, verified on their own.

A function with global linkage in the program's BTF (``Program.functions``,
from .BTF.ext func_info) is not explored in its caller's context, as a
static subprogram is. The kernel (``check_func_call``) checks a call's
arguments against the prototype only -- a scalar parameter takes a scalar,
a pointer to the program type's context struct takes the context, a pointer
to a sized type takes memory of that size or NULL -- prints
``Func#N ('name') is global and assumed valid.``, and gives the caller an
unknown scalar in r0 with r1-r5 cleared. After the main program, each global
function a path called is verified once from the arguments its prototype
allows (``do_check_subprogs``): an unknown scalar, the context, or memory of
the pointed-to size that may be NULL; it must return a scalar.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import messages as M
from .cfg import subprogram_starts
from .checks import Env, Reject, access_for_helper, check_ptr_off
from .state import BPF_REG_FP, NOT_INIT, OR_NULL_BASE, Frame, RegType, State, pointer, scalar

MAX_ARGS = 5


@dataclass(frozen=True)
class GlobalFunction:
    number: int  # the kernel's subprogram number: func#N
    entry: int
    name: str
    params: tuple  # ebpfvm.program.FunctionParam
    returns_scalar: bool


def global_functions(program: object) -> dict[int, GlobalFunction]:
    """The program's global functions other than the main one, by entry slot."""
    starts = subprogram_starts(program)
    found = {}
    for info in getattr(program, "functions", ()) or ():
        if info.is_global and info.insn != 0 and info.insn in starts:
            found[info.insn] = GlobalFunction(starts.index(info.insn), info.insn, info.name, info.params,
                                              info.returns_scalar)
    return found


def argument_kinds(env: Env, fn: GlobalFunction) -> list[tuple[str, int]]:
    """``btf_prepare_func_args``: ("scalar" | "ctx" | "mem", size) per parameter."""
    if len(fn.params) > MAX_ARGS:
        raise Reject(M.GLOBAL_TOO_MANY_ARGS, name=fn.name, n=len(fn.params), max=MAX_ARGS)
    if not fn.returns_scalar:
        raise Reject(M.GLOBAL_RETURN_NOT_SCALAR, name=fn.name)
    ctx_struct = f"STRUCT {env.layout.struct}" if env.layout is not None else None
    kinds = []
    for i, param in enumerate(fn.params):
        if param.kind == "pointer" and param.target == ctx_struct:
            kinds.append(("ctx", 0))
        elif param.kind == "pointer":
            if param.size is None:
                raise Reject(M.GLOBAL_ARG_SIZE, arg=i, type=param.target)
            kinds.append(("mem", param.size))
        elif param.kind == "scalar":
            kinds.append(("scalar", 0))
        else:
            raise Reject(M.GLOBAL_ARG_UNSUPPORTED, arg=i, type=param.target.split(" ")[0] or "UNKNOWN",
                         name=fn.name)
    return kinds


def main_prototype_problem(env: Env) -> str | None:
    """What ``btf_prepare_func_args`` logs about the main function's
    prototype when it cannot use it; the kernel logs it and goes on (r1 is
    the context whatever the prototype says)."""
    info = next((f for f in getattr(env.program, "functions", ()) or () if f.insn == 0), None)
    if info is None:
        return None
    try:
        argument_kinds(env, GlobalFunction(0, info.insn, info.name, info.params, info.returns_scalar))
    except Reject as exc:
        return exc.text
    return None


def _check_argument(env: Env, state: State, i: int, kind: str, size: int) -> None:
    """``btf_check_func_arg_match`` for parameter ``i`` (register ``i + 1``)."""
    regno = i + 1
    reg = state.regs[regno]
    if kind == "scalar":
        if not reg.is_scalar:
            raise Reject(M.GLOBAL_ARG_NOT_SCALAR, reg=regno)
    elif kind == "ctx":
        if reg.type is RegType.PTR_TO_CTX:
            check_ptr_off(regno, reg)
        else:
            raise Reject(M.GLOBAL_ARG_NOT_CTX, arg=i)
    elif not (reg.is_scalar and reg.var.is_const() and reg.var.value == 0):  # NULL is always allowed
        if reg.type in OR_NULL_BASE:  # checked as if it were not NULL
            reg = replace(reg, type=OR_NULL_BASE[reg.type])
        if reg.type not in (RegType.PTR_TO_STACK, RegType.PTR_TO_MAP_VALUE, RegType.PTR_TO_MAP_KEY,
                            RegType.PTR_TO_MEM, RegType.PTR_TO_RINGBUF_MEM, RegType.PTR_TO_PACKET,
                            RegType.PTR_TO_PACKET_META):
            raise Reject(M.ARG_TYPE, reg=regno, type=reg.type, expected=RegType.PTR_TO_STACK)
        access_for_helper(env, state, regno, reg, size, False)
        if reg.type is not RegType.PTR_TO_STACK:  # (a write check on the stack would mark the bytes written)
            access_for_helper(env, state, regno, reg, size, True)


def call_global(env: Env, state: State, pc: int, fn: GlobalFunction) -> list:
    """A call of global function ``fn``: the arguments against its prototype,
    then an unknown scalar in r0 (``env.notes`` gets the log line)."""
    try:
        for i, (kind, size) in enumerate(argument_kinds(env, fn)):
            _check_argument(env, state, i, kind, size)
    except Reject as bad:
        error = Reject(M.GLOBAL_BAD_CALL, n=fn.number, name=fn.name)
        error.detail = bad.text
        raise error from None
    env.called_globals.setdefault(fn.entry, fn)
    env.notes.append(M.GLOBAL_ASSUMED_VALID(n=fn.number, name=fn.name))
    for r in range(1, 6):
        state.regs[r] = NOT_INIT
    state.regs[0] = scalar()
    return [(pc + 1, state)]


def entry_state(env: Env, fn: GlobalFunction) -> State:
    """The state ``fn`` is verified from: what its prototype allows in r1-r5."""
    regs = [NOT_INIT] * 11
    state = State([Frame(regs, {}, 0, -1, fn.entry)])
    for i, (kind, size) in enumerate(argument_kinds(env, fn)):
        if kind == "scalar":
            regs[i + 1] = scalar()
        elif kind == "ctx":
            regs[i + 1] = pointer(RegType.PTR_TO_CTX)
        else:
            regs[i + 1] = replace(pointer(RegType.PTR_TO_MEM_OR_NULL), id=state.fresh_id(), mem_size=size)
    regs[BPF_REG_FP] = pointer(RegType.PTR_TO_STACK)
    return state
