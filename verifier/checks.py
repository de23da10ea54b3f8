"""Safety checks the transfer functions make: register reads and writes,
memory accesses per region, helper arguments, return values.

Each check either returns what the access yields or raises :class:`Reject`
with the kernel's message; the exploration layer turns a ``Reject`` into the
verifier's result (rejections are results at the API, the exception only
unwinds one instruction).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ebpfvm.helpers.prototype import ArgFlag, ArgKind, Prototype

from . import messages as M
from .domains import S64_MIN, ScalarBounds
from .precision import demand_precision, demand_slot, loaded_from
from .state import (
    BPF_REG_FP,
    MAX_BPF_STACK,
    NOT_INIT,
    OR_NULL_BASE,
    PACKET_TYPES,
    Frame,
    Reg,
    RegType,
    Slot,
    StackSlot,
    State,
    const,
    fits_width,
    pointer,
    scalar,
    with_scalar_id,
)

BPF_MAX_VAR_OFF = 1 << 29
MAX_PACKET_OFF = 0xFFFF


class Reject(Exception):
    """A rejection at the current instruction: the kernel's message and errno
    (and ``detail``: lines the kernel logs just before that message)."""

    def __init__(self, message: M.Message, **fields: object) -> None:
        self.text = message(**fields)
        self.errno = message.errno or "EINVAL"
        self.detail = ""
        super().__init__(self.text)


@dataclass
class Env:
    """What the whole verification knows: the program, its type, flags."""

    program: object
    prog_type: str | None
    layout: object | None  # ebpfvm.progtypes ContextLayout, None when the type is not modelled
    ptype: object | None
    strict_alignment: bool = False
    privileged: bool = True
    maps: tuple = ()
    attach_type: str | None = None
    stack_depth: dict[int, int] = field(default_factory=dict)  # subprog start -> bytes used
    ids: int = 0
    inner_maps: dict[int, int] = field(default_factory=dict)  # outer map-in-map index -> its inner map's index
    precise_slots: set = field(default_factory=set)  # stack slots whose exact values a check needed (.precision)
    callback_returned: bool = False  # the last instruction returned from a callback to its call site
    live_regs: list | None = None  # live-before register masks per insn (verifier.liveness), computed on first use
    global_functions: dict = field(default_factory=dict)  # entry slot -> globals.GlobalFunction
    called_globals: dict = field(default_factory=dict)  # the global functions a path called, in call order
    notes: list = field(default_factory=list)  # lines the last instruction wants in the log after it
    ref_sites: dict = field(default_factory=dict)  # reference id -> the instruction that acquired it
    loop_inline: dict = field(default_factory=dict)  # bpf_loop call -> (can be inlined, callback) (.callbacks)


def live_registers(env: Env) -> list[int]:
    """The registers live before each instruction (``verifier.liveness``), computed once."""
    if env.live_regs is None:
        from .liveness import helper_arg_counter, live_regs_before
        env.live_regs = live_regs_before(env.program, helper_arg_counter(env.ptype))
    return env.live_regs


def inner_map_index(env: Env, outer: int) -> int | None:
    """The index in ``env.maps`` of the inner map template (``inner_map_meta``)
    of map-in-map ``outer``, appended on first use; None when ``outer`` is not
    an array_of_maps/hash_of_maps with a known inner map."""
    if outer in env.inner_maps:
        return env.inner_maps[outer]
    definition = env.maps[outer] if 0 <= outer < len(env.maps) else None
    inner = getattr(definition, "inner", None)
    if definition is None or inner is None or definition.map_type not in ("array_of_maps", "hash_of_maps"):
        return None
    env.maps = tuple(env.maps) + (inner,)
    env.inner_maps[outer] = len(env.maps) - 1
    return env.inner_maps[outer]


# --- registers ------------------------------------------------------------------------


def read_reg(state: State, regno: int) -> Reg:
    """``check_reg_arg(SRC_OP)``: the register must exist and be initialised."""
    if regno > BPF_REG_FP:
        raise Reject(M.REG_INVALID, reg=regno)
    reg = state.regs[regno]
    if reg.type is RegType.NOT_INIT:
        raise Reject(M.NOT_READ_OK, reg=regno)
    return reg


def check_write_reg(regno: int) -> None:
    """``check_reg_arg(DST_OP)``: r10 cannot be written."""
    if regno > BPF_REG_FP:
        raise Reject(M.REG_INVALID, reg=regno)
    if regno == BPF_REG_FP:
        raise Reject(M.FP_READ_ONLY)


# --- alignment ------------------------------------------------------------------------

_ALIGN_DESC = {RegType.PTR_TO_STACK: "stack ", RegType.PTR_TO_MAP_VALUE: "value ", RegType.PTR_TO_CTX: "context ",
               RegType.PTR_TO_MAP_KEY: "", RegType.PTR_TO_MEM: "", RegType.PTR_TO_RINGBUF_MEM: ""}


def check_alignment(env: Env, reg: Reg, off: int, size: int) -> None:
    """``check_ptr_alignment``: stack accesses are always checked (the spill
    tracking relies on it); others only with BPF_F_STRICT_ALIGNMENT."""
    strict = env.strict_alignment or reg.type is RegType.PTR_TO_STACK
    if not strict or size == 1:
        return
    if reg.type in PACKET_TYPES:
        total = reg.var.var_off.add(ScalarBounds.const(2 + reg.off + off).var_off)
        if not total.is_aligned(size):
            raise Reject(M.MISALIGNED_PKT, ip=2, var=reg.var.var_off.kernel_str(), reg_off=reg.off, off=off,
                         size=size)
        return
    total = reg.var.var_off.add(ScalarBounds.const(reg.off + off).var_off)
    if not total.is_aligned(size):
        raise Reject(M.MISALIGNED, desc=_ALIGN_DESC.get(reg.type, ""), var=reg.var.var_off.kernel_str(),
                     reg_off=reg.off, off=off, size=size)


# --- regions with a size: map values, memory ------------------------------------------


def check_region(regno: int, reg: Reg, off: int, size: int, region_size: int, oob: M.Message, **what: object) -> None:
    """``check_mem_region_access``: fixed offset ``reg.off + off`` plus the
    variable part's bounds must stay inside ``region_size`` bytes."""
    var = reg.var
    total = reg.off + off
    if var.smin < 0 and (var.smin == S64_MIN or var.smin + total < 0 or not -(1 << 31) <= var.smin + total < 1 << 31):
        raise Reject(M.MIN_NEGATIVE, reg=regno)
    lo = var.smin + total
    if lo < 0 or lo + size > region_size:
        raise Reject(M.MIN_OUTSIDE, reg=regno)
    if var.umax >= BPF_MAX_VAR_OFF:
        raise Reject(M.UNBOUNDED_ACCESS, reg=regno)
    hi = var.umax + total
    if hi < 0 or hi + size > region_size:
        raise Reject(M.MAX_OUTSIDE, reg=regno)


def _map_of(env: Env, reg: Reg):
    return env.maps[reg.map] if 0 <= reg.map < len(env.maps) else None


_RDONLY_PROG, _WRONLY_PROG = 1 << 7, 1 << 8


def check_map_value(env: Env, regno: int, reg: Reg, off: int, size: int, write: bool) -> None:
    definition = _map_of(env, reg)
    value_size = definition.value_size if definition else 1 << 30
    flags = definition.flags if definition else 0
    if write and flags & _RDONLY_PROG:
        raise Reject(M.MAP_WRITE_FORBIDDEN, value_size=value_size, off=reg.off + off, size=size)
    if not write and flags & _WRONLY_PROG:
        raise Reject(M.MAP_READ_FORBIDDEN, value_size=value_size, off=reg.off + off, size=size)
    check_region(regno, reg, off, size, value_size, M.MAP_VALUE_BOUNDS)


def _read_only_value(env: Env, reg: Reg, off: int, size: int) -> int | None:
    """``bpf_map_direct_read``: a load at a constant offset from a read-only
    global-data map (``.rodata``, frozen once loaded) is its initial value."""
    definition = _map_of(env, reg)
    if definition is None or not reg.var.is_const() or size not in (1, 2, 4, 8):
        return None
    data = definition.initial_value
    if data is None or not (definition.read_only or definition.flags & _RDONLY_PROG):
        return None
    start = reg.off + reg.var.smin + off
    if start < 0 or start + size > len(data):
        return None
    return int.from_bytes(data[start:start + size], "little")


def check_packet(env: Env, regno: int, reg: Reg, off: int, size: int) -> None:
    """``check_packet_access``: ``[reg.off + off, + size)`` inside the range
    a comparison against data_end proved."""
    if reg.var.smin < 0:
        raise Reject(M.PKT_MIN_NEGATIVE, reg=regno)
    start = reg.off + off
    if start < 0 or start + size > reg.range:
        raise Reject(M.PKT_OUTSIDE, reg=regno)


# --- the context ----------------------------------------------------------------------


def check_ptr_off(regno: int, reg: Reg, fixed_ok: bool = False) -> None:
    """``__check_ptr_off_reg``: a pointer that must not have been moved."""
    if reg.off < 0:
        raise Reject(M.NEGATIVE_PTR_OFF, type=reg.type, reg=regno, off=reg.off)
    if not fixed_ok and reg.off:
        raise Reject(M.MODIFIED_PTR, type=reg.type, reg=regno, off=reg.off)
    if not reg.var.is_const() or reg.var.value:
        raise Reject(M.VARIABLE_PTR_ACCESS, type=reg.type, var=reg.var.var_off)


# Which program types may read (and write) packet data directly
# (may_access_direct_pkt_data).
_PKT_READ = frozenset({"sched_cls", "sched_act", "xdp", "cgroup_skb", "lwt_in", "lwt_out", "lwt_xmit", "sk_skb",
                       "sk_msg", "flow_dissector", "lwt_seg6local"})
_PKT_WRITE = frozenset({"sched_cls", "sched_act", "xdp", "lwt_xmit", "sk_skb", "sk_msg"})


def check_ctx(env: Env, regno: int, reg: Reg, off: int, size: int, write: bool) -> Reg:
    """A context load or store; returns what a load yields."""
    check_ptr_off(regno, reg)
    offset = reg.off + off
    if env.layout is None:  # an unmodelled type: allow reads, give a scalar
        return scalar()
    from ebpfvm.progtypes import ContextAccessError, FieldKind
    try:
        fld = env.layout.check(offset, size, write)
    except ContextAccessError:
        raise Reject(M.CTX_ACCESS, off=offset, size=size) from None
    kinds = {FieldKind.PACKET: RegType.PTR_TO_PACKET, FieldKind.PACKET_END: RegType.PTR_TO_PACKET_END,
             FieldKind.PACKET_META: RegType.PTR_TO_PACKET_META, FieldKind.SOCKET: RegType.PTR_TO_SOCK_COMMON_OR_NULL}
    if fld.kind in kinds and not write:
        if fld.kind is not FieldKind.SOCKET and env.prog_type not in _PKT_READ:
            raise Reject(M.CTX_ACCESS, off=offset, size=size)
        out = pointer(kinds[fld.kind])
        if fld.kind is FieldKind.SOCKET:
            out = Reg(out.type, out.var, id=state_fresh_id(env))  # maybe-NULL: an id for the null check
        return out
    return scalar()


def state_fresh_id(env: Env) -> int:
    env.ids += 1
    return 1_000_000 + env.ids


# --- the stack ------------------------------------------------------------------------


def stack_frame(state: State, reg: Reg) -> Frame:
    return state.frames[reg.frameno]


def _stack_bounds(env: Env, regno: int, reg: Reg, off: int, size: int, extra: str) -> tuple[int, int]:
    """``check_stack_access_within_bounds``: the lowest and highest byte offsets."""
    if reg.var.is_const():
        lo = reg.off + off + _signed(reg.var.value)
        if lo < -MAX_BPF_STACK or lo + size > 0 or size <= 0:
            raise Reject(M.STACK_BOUNDS, extra=extra, reg=regno, off=lo, size=size)
        return lo, lo + size
    if reg.var.smax >= BPF_MAX_VAR_OFF or reg.var.smin <= -BPF_MAX_VAR_OFF:
        raise Reject(M.STACK_VAR_UNBOUNDED, extra=extra, reg=regno)
    # the kernel's message gives the access offset with the pointer's fixed offset in it
    lo = reg.var.smin + reg.off + off
    hi = reg.var.smax + reg.off + off + size
    if lo < -MAX_BPF_STACK or hi > 0:
        raise Reject(M.STACK_VAR_BOUNDS, extra=extra, reg=regno, var=reg.var.var_off, off=reg.off + off, size=size)
    return lo, hi


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def note_stack_depth(env: Env, state: State, reg: Reg, lo: int) -> None:
    sub = state.frames[reg.frameno].subprog
    env.stack_depth[sub] = max(env.stack_depth.get(sub, 0), -lo)


def stack_write(env: Env, state: State, regno: int, reg: Reg, off: int, size: int, value: Reg | None,
                imm: int | None = None) -> None:
    """A store of ``size`` bytes (``check_stack_write_fixed_off``): a whole
    8-byte aligned register is spilled with its state; as root a narrower
    scalar (or BPF_ST constant) at an 8-byte aligned offset is spilled too,
    its low bytes marked SPILL; a pointer in any other size is refused;
    other bytes become MISC (ZERO for a known zero)."""
    lo, hi = _stack_bounds(env, regno, reg, off, size, " write to")
    note_stack_depth(env, state, reg, lo)
    frame = stack_frame(state, reg)
    if value is not None and value.is_pointer and size != 8 and reg.var.is_const():
        # only check_stack_write_fixed_off refuses a partial pointer spill; a
        # variable-offset write (root) just makes the bytes MISC
        raise Reject(M.SPILL_SIZE)
    if (value is not None and value.type is RegType.PTR_TO_STACK and reg.var.is_const()
            and reg.frameno != len(state.frames) - 1):
        # a spilled stack pointer must not outlive its frame in an older one
        raise Reject(M.SPILL_STACK_PTR_TO_CALLER)
    if reg.var.is_const():
        if imm is not None and lo % 8 == 0 and (size == 8 or env.privileged):
            value = const(imm)
        if value is not None and size == 8 and lo % 8 == 0:
            frame.stack[(-lo - 1) // 8] = StackSlot((Slot.SPILL,) * 8, value)
            return
        if value is not None and value.is_scalar and lo % 8 == 0 and env.privileged:
            _narrow_spill(frame, lo, size, value)
            return
        zero = (value is not None and value.is_const(0)) or imm == 0
        _mark_bytes(frame, lo, hi, Slot.ZERO if zero else Slot.MISC)
    else:
        _mark_bytes(frame, lo, hi, Slot.MISC, only_written=False)


def _narrow_spill(frame: Frame, lo: int, size: int, value: Reg) -> None:
    """``save_register_state`` with ``size < 8``: the low ``size`` bytes hold
    the spilled scalar (the whole register is kept, as the kernel does); the
    other bytes of the slot become MISC unless ZERO or never written."""
    index = (-lo - 1) // 8
    old = frame.stack.get(index) or StackSlot()
    rest = tuple(k if k in (Slot.ZERO, Slot.INVALID) else Slot.MISC for k in old.kinds[size:])
    frame.stack[index] = StackSlot((Slot.SPILL,) * size + rest, value)


def _mark_bytes(frame: Frame, lo: int, hi: int, kind: Slot, only_written: bool = False) -> None:
    for index in range((-hi) // 8, (-lo - 1) // 8 + 1):
        slot = frame.stack.get(index) or StackSlot()
        kinds = list(slot.kinds)
        if slot.spilled is not None:  # a partial overwrite destroys the spill (scrub_spilled_slot)
            kinds = [k if k is Slot.INVALID else Slot.MISC for k in kinds]
        for b in range(8):
            addr = -8 * (index + 1) + b
            if lo <= addr < hi:
                kinds[b] = kind
        frame.stack[index] = StackSlot(tuple(kinds), None)


def stack_read(env: Env, state: State, regno: int, reg: Reg, off: int, size: int) -> Reg:
    """A load: restores a spilled register whole, else a scalar (zero when
    every byte is known zero); any uninitialised byte is an error."""
    lo, hi = _stack_bounds(env, regno, reg, off, size, " read from")
    # a read grows the frame's stack depth too (check_stack_access_within_bounds)
    note_stack_depth(env, state, reg, lo)
    frame = stack_frame(state, reg)
    if not reg.var.is_const():
        for addr in range(lo, hi):
            if frame.byte_kind(addr) is Slot.INVALID and not env.privileged:
                raise Reject(M.STACK_VAR_READ_UNINIT, reg=regno, var=reg.var.var_off, i=addr - lo, size=size)
        # mark_reg_stack_read: zero when every byte it may read is, else unknown (of the load's width)
        if all(frame.byte_kind(addr) is Slot.ZERO for addr in range(lo, hi)):
            return const(0)
        return scalar(_sized(size))
    index = (-lo - 1) // 8
    slot = frame.stack.get(index)
    if slot is not None and slot.spilled is not None and slot.kinds[0] is Slot.SPILL:
        return loaded_from(_fill(env, frame, slot, lo, hi, size, state), (frame.subprog, frame.frameno, index))
    zero = True
    for addr in range(lo, hi):
        kind = frame.byte_kind(addr)
        if kind is Slot.INVALID and not env.privileged:
            raise Reject(M.STACK_READ_UNINIT, off=lo, i=addr - lo, size=size)
        if kind is Slot.SPILL:
            sl = frame.stack[(-addr - 1) // 8]
            if sl.spilled is not None and sl.spilled.is_pointer:
                raise Reject(M.FILL_SIZE)
        zero = zero and kind is Slot.ZERO
    key = (frame.subprog, frame.frameno, index)
    if zero:
        return loaded_from(const(0), key)
    return loaded_from(scalar(ScalarBounds.unknown().truncate(size) if size < 8 else None), key)


def _spill_size(slot: StackSlot, start: int = 0) -> int:
    """How many bytes from byte ``start`` up are SPILL (a spill fills the slot's low bytes)."""
    n = 0
    for kind in slot.kinds[start:]:
        if kind is not Slot.SPILL:
            break
        n += 1
    return n


def _fill(env: Env, frame: Frame, slot: StackSlot, lo: int, hi: int, size: int, state: State) -> Reg:
    """``check_stack_read_fixed_off`` on a slot holding a spilled register:
    the whole register back, or (scalars only) a narrower read of the spill
    from its start, coerced to ``size`` bytes (still linked to the slot by
    its id when the value fits); any other read of the slot is a zero when
    every byte is known zero, else an unknown scalar."""
    spilled = slot.spilled
    spill_size = _spill_size(slot)
    if size == 8 and spill_size == 8:
        return spilled
    if spilled.is_pointer:
        raise Reject(M.FILL_SIZE)
    if size <= spill_size and lo % 8 == 0:
        if not fits_width(spilled, size):
            return replace(spilled, var=spilled.var.truncate(size), id=0)
        if env.privileged and size == 4 and spill_size == 4 and not spilled.id:
            spilled = with_scalar_id(state, spilled)
            frame.stack[(-lo - 1) // 8] = StackSlot(slot.kinds, spilled)
        return replace(spilled, var=spilled.var.truncate(size))
    spill_cnt = zero_cnt = 0
    for addr in range(lo, hi):
        kind = frame.byte_kind(addr)
        if kind is Slot.INVALID and not env.privileged:
            raise Reject(M.STACK_READ_UNINIT, off=lo, i=addr - lo, size=size)
        spill_cnt += kind is Slot.SPILL
        zero_cnt += kind is Slot.ZERO
    if (spill_cnt == size and spilled.is_const(0)) or zero_cnt == size:
        return const(0)
    return scalar(ScalarBounds.unknown().truncate(size))


def constant_map_key(env: Env, state: State, reg: Reg, key_size: int) -> int | None:
    """``get_constant_map_key``: the key a stack pointer points at when it is
    known now — as root only: ``key_size`` ZERO bytes from the key's start
    within its slot (the key is 0), or a spilled constant scalar whose SPILL
    bytes from the key's start number exactly ``key_size`` (the key is then
    the whole spilled register's value, as in the kernel).  None otherwise."""
    if not env.privileged or reg.type is not RegType.PTR_TO_STACK or not reg.var.is_const():
        return None
    addr = reg.off + _signed(reg.var.value)
    slot = stack_frame(state, reg).stack.get((-addr - 1) // 8)
    if slot is None:
        return None
    start = addr % 8  # the key's first byte within its slot (byte 0 is the lowest address)
    zeros = 0
    for kind in slot.kinds[start:]:
        if kind is not Slot.ZERO:
            break
        zeros += 1
    if zeros >= key_size:
        return 0
    spilled = slot.spilled
    if spilled is None or not spilled.is_scalar or slot.kinds[0] is not Slot.SPILL:
        return None
    if _spill_size(slot, start) != key_size or not spilled.var.is_const():
        return None
    frame = stack_frame(state, reg)
    demand_slot(env, (frame.subprog, frame.frameno, (-addr - 1) // 8))  # the verdict relies on it
    return spilled.var.value


def stack_range_for_helper(env: Env, state: State, regno: int, reg: Reg, size: int, write: bool,
                           zero_ok: bool = False) -> None:
    """``check_stack_range_initialized``: a helper reads (or writes) ``size``
    bytes at the stack pointer."""
    if size == 0 and zero_ok:
        return
    if reg.var.is_const():
        lo = reg.off + _signed(reg.var.value)
        if lo < -MAX_BPF_STACK or lo + size > 0 or size <= 0:
            raise Reject(M.STACK_BOUNDS, extra=" write to" if write else " read from", reg=regno, off=lo,
                         size=size)
        hi = lo + size
    else:
        lo, hi = _stack_bounds(env, regno, reg, 0, size, " write to" if write else " read from")
    note_stack_depth(env, state, reg, lo)
    frame = stack_frame(state, reg)
    if write:
        _mark_bytes(frame, lo, hi, Slot.MISC)
        return
    if env.privileged:
        return  # allow_uninit_stack (CAP_PERFMON): uninitialised bytes read as unknown
    for addr in range(lo, hi):
        if frame.byte_kind(addr) is Slot.INVALID:
            if reg.var.is_const():
                raise Reject(M.STACK_INDIRECT_UNINIT, reg=regno, off=lo, i=addr - lo, size=size)
            raise Reject(M.STACK_VAR_READ_UNINIT, reg=regno, var=reg.var.var_off, i=addr - lo, size=size)


# --- memory access dispatch -------------------------------------------------------------


def check_mem_access(env: Env, state: State, regno: int, off: int, size: int, write: bool,
                     value: Reg | None = None, imm: int | None = None) -> Reg | None:
    """``check_mem_access``: a load (returns the loaded register) or store
    through register ``regno`` at ``off``."""
    reg = state.regs[regno]
    check_alignment(env, reg, off, size)
    t = reg.type
    if t is RegType.PTR_TO_STACK:
        if write:
            stack_write(env, state, regno, reg, off, size, value, imm)
            return None
        return stack_read(env, state, regno, reg, off, size)
    if t is RegType.PTR_TO_MAP_VALUE:
        check_map_value(env, regno, reg, off, size, write)
        if write:
            return None
        known = _read_only_value(env, reg, off, size)
        return scalar(_sized(size)) if known is None else const(known)
    if t is RegType.PTR_TO_CTX:
        loaded = check_ctx(env, regno, reg, off, size, write)
        if loaded.is_scalar:
            return scalar(_sized(size))
        return loaded
    if t in PACKET_TYPES:
        if write and env.prog_type not in _PKT_WRITE:
            raise Reject(M.PKT_WRITE)
        check_packet(env, regno, reg, off, size)
        return None if write else scalar(_sized(size))
    if t in (RegType.PTR_TO_MEM, RegType.PTR_TO_RINGBUF_MEM, RegType.PTR_TO_MAP_KEY):
        limit = reg.mem_size
        if t is RegType.PTR_TO_MAP_KEY:
            definition = _map_of(env, reg)
            limit = definition.key_size if definition else 1 << 30
        check_region(regno, reg, off, size, limit, M.MEM_BOUNDS)
        return None if write else scalar(_sized(size))
    if t is RegType.PTR_TO_SOCK_COMMON and not write:
        # struct bpf_sock_common fields: bpf_sock_common_is_valid_access, simplified to bounds
        if reg.off + off < 0 or reg.off + off + size > BPF_SOCK_SIZE:
            raise Reject(M.INVALID_MEM_ACCESS, reg=regno, type=t)
        return scalar(_sized(size))
    if t is RegType.CONST_PTR_TO_MAP and not write:
        # as root a BTF-typed read of the map's kernel struct (struct bpf_array for arrays)
        check_ptr_off(regno, reg, fixed_ok=True)
        if reg.off + off + size > BPF_ARRAY_SIZE or reg.off + off < 0:
            raise Reject(M.BEYOND_STRUCT, struct="bpf_array", off=reg.off + off, size=size)
        return scalar()
    raise Reject(M.INVALID_MEM_ACCESS, reg=regno, type=t)


BPF_SOCK_SIZE = 80  # sizeof(struct bpf_sock)
BPF_ARRAY_SIZE = 0x140  # sizeof(struct bpf_array) without its values, approximately (no vmlinux BTF here)


def _sized(size: int) -> ScalarBounds:
    return ScalarBounds.unknown().truncate(size) if size < 8 else ScalarBounds.unknown()


# --- helper arguments ---------------------------------------------------------------------

_MAP_KEY_VALUE_TYPES = (RegType.PTR_TO_STACK, RegType.PTR_TO_PACKET, RegType.PTR_TO_PACKET_META,
                        RegType.PTR_TO_MAP_KEY, RegType.PTR_TO_MAP_VALUE)
_MEM_TYPE_NAMES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
_MEM_TYPES = _MAP_KEY_VALUE_TYPES + (RegType.PTR_TO_MEM, RegType.PTR_TO_RINGBUF_MEM)


def _expect(regno: int, reg: Reg, types: tuple[RegType, ...], names: str | None = None) -> None:
    if reg.type not in types:
        raise Reject(M.ARG_TYPE, reg=regno, type=reg.type, expected=names or ", ".join(str(t) for t in types))


def access_for_helper(env: Env, state: State, regno: int, reg: Reg, size: int, write: bool,
                      zero_ok: bool = False) -> None:
    """``check_helper_mem_access``: ``size`` bytes at a pointer argument."""
    t = reg.type
    if t is RegType.PTR_TO_STACK:
        stack_range_for_helper(env, state, regno, reg, size, write, zero_ok)
    elif t in PACKET_TYPES:
        if write and env.prog_type not in _PKT_WRITE:
            raise Reject(M.PKT_WRITE)
        check_packet(env, regno, reg, 0, size)
    elif t is RegType.PTR_TO_MAP_VALUE:
        if size:
            check_map_value(env, regno, reg, 0, size, write)
    elif t is RegType.PTR_TO_MAP_KEY:
        definition = _map_of(env, reg)
        check_region(regno, reg, 0, size, definition.key_size if definition else 1 << 30, M.MEM_BOUNDS)
    elif t in (RegType.PTR_TO_MEM, RegType.PTR_TO_RINGBUF_MEM):
        check_region(regno, reg, 0, size, reg.mem_size, M.MEM_BOUNDS)


# can_elide_value_nullness: lookups in these map types with a key known at
# verification time and below max_entries cannot fail.
KNOWN_KEY_MAP_TYPES = frozenset({"array", "percpu_array"})


@dataclass
class CallMeta:
    """What the argument checks learn: the map, the constant sizes."""

    map: int = -1
    alloc_size: int = 0
    release_ref: int = 0
    pending_mem: tuple[int, Reg, bool] | None = None  # (regno, pointer, uninit) awaiting its size argument
    const_key: int = -1  # the map key known now (constant_map_key), array maps only; -1 when unknown
    msize_max: int = 0  # the largest value of the last size argument (msize_max_value)


def check_helper_args(env: Env, state: State, proto: Prototype, name: str, helper: int) -> CallMeta:
    """``check_func_arg`` for r1..r5 in order."""
    meta = CallMeta()
    for i, kind in enumerate(proto.args):
        regno = i + 1
        flags = proto.flags(i)
        if kind is ArgKind.DONTCARE:
            continue
        reg = read_reg(state, regno)
        maybe_null = bool(flags & ArgFlag.MAYBE_NULL)
        if kind is ArgKind.ANYTHING:
            continue
        if kind is ArgKind.CONST_MAP_PTR:
            _expect(regno, reg, (RegType.CONST_PTR_TO_MAP,))
            meta.map = reg.map
        elif kind in (ArgKind.PTR_TO_MAP_KEY, ArgKind.PTR_TO_MAP_VALUE):
            if maybe_null and reg.is_const(0):
                continue
            _expect(regno, reg, _MEM_TYPES, _MEM_TYPE_NAMES)
            definition = env.maps[meta.map] if 0 <= meta.map < len(env.maps) else None
            if definition is not None:
                size = definition.key_size if kind is ArgKind.PTR_TO_MAP_KEY else definition.value_size
                access_for_helper(env, state, regno, reg, size, write=bool(flags & ArgFlag.UNINIT))
                if kind is ArgKind.PTR_TO_MAP_KEY and definition.map_type in KNOWN_KEY_MAP_TYPES:
                    key = constant_map_key(env, state, reg, size)
                    meta.const_key = -1 if key is None else key
        elif kind in (ArgKind.PTR_TO_MEM, ArgKind.PTR_TO_UNINIT_MEM):
            if maybe_null and reg.is_const(0):
                meta.pending_mem = None
                continue
            _expect(regno, reg, _MEM_TYPES, _MEM_TYPE_NAMES)
            uninit = kind is ArgKind.PTR_TO_UNINIT_MEM or bool(flags & ArgFlag.UNINIT)
            meta.pending_mem = (regno, reg, uninit)
        elif kind in (ArgKind.CONST_SIZE, ArgKind.CONST_SIZE_OR_ZERO):
            _expect(regno, reg, (RegType.SCALAR,))
            zero_ok = kind is ArgKind.CONST_SIZE_OR_ZERO
            var = reg.var
            demand_precision(env, reg)
            if var.smin < 0:
                raise Reject(M.SIZE_NEGATIVE, reg=regno)
            if var.umin == 0 and not zero_ok:
                raise Reject(M.ZERO_SIZE, reg=regno)
            if var.umax >= BPF_MAX_VAR_OFF:
                raise Reject(M.SIZE_UNBOUNDED, reg=regno)
            meta.msize_max = var.umax
            if meta.pending_mem is not None:
                mregno, mreg, uninit = meta.pending_mem
                access_for_helper(env, state, mregno, mreg, var.umax, write=uninit, zero_ok=zero_ok)
                meta.pending_mem = None
        elif kind is ArgKind.CONST_ALLOC_SIZE_OR_ZERO:
            _expect(regno, reg, (RegType.SCALAR,))
            if not reg.var.is_const():
                raise Reject(M.NOT_KNOWN_CONSTANT, reg=regno)
            demand_precision(env, reg)
            meta.alloc_size = reg.var.value
        elif kind is ArgKind.PTR_TO_CTX:
            _expect(regno, reg, (RegType.PTR_TO_CTX,))
            check_ptr_off(regno, reg)
        elif kind is ArgKind.PTR_TO_ALLOC_MEM:
            _expect(regno, reg, (RegType.PTR_TO_RINGBUF_MEM,))
            if flags & ArgFlag.RELEASE:
                if not reg.ref_obj_id:
                    raise Reject(M.RELEASE_NO_REF, reg=regno)
                meta.release_ref = reg.ref_obj_id
        elif kind is ArgKind.PTR_TO_STACK:
            _expect(regno, reg, (RegType.PTR_TO_STACK,))
        elif kind is ArgKind.PTR_TO_FUNC:
            _expect(regno, reg, (RegType.PTR_TO_FUNC,))
        # other kinds (const strings, spin locks): accepted as given
    return meta


# --- return values ----------------------------------------------------------------------


def return_range(env: Env) -> tuple[int, int] | None:
    """The values the main program may return (``check_return_code``)."""
    if env.prog_type == "cgroup_skb":
        egress = (env.attach_type or "") in ("cgroup_inet_egress", "1")
        return (0, 3) if egress else (0, 1)
    if env.prog_type in ("cgroup_sock", "cgroup_sock_addr", "cgroup_sysctl", "cgroup_device", "sockops",
                         "cgroup_sockopt"):
        return (0, 1)
    return getattr(env.ptype, "return_range", None) if env.ptype is not None else None


def check_return(env: Env, state: State) -> None:
    r0 = read_reg(state, 0)
    if state.frames[0].subprog:  # a global function, verified on its own: any scalar
        if not r0.is_scalar:
            raise Reject(M.SUBPROG_EXIT_NOT_SCALAR, type=r0.type)
        return
    limits = return_range(env)
    if limits is None:
        return
    if not r0.is_scalar:
        raise Reject(M.RETURN_NOT_SCALAR, type=r0.type)
    lo, hi = limits
    demand_precision(env, r0)
    if r0.var.smin < lo or r0.var.smax > hi:
        parts = []
        if r0.var.smin > S64_MIN:
            parts.append(f"smin={r0.var.smin}")
        if r0.var.smax < (1 << 63) - 1:
            parts.append(f"smax={r0.var.smax}")
        raise Reject(M.RETURN_RANGE, bounds=" ".join(parts) or "unknown scalar value", lo=lo, hi=hi)


def _bounds_text(r0: Reg) -> str:
    parts = []
    if r0.var.smin > S64_MIN:
        parts.append(f"smin={r0.var.smin}")
    if r0.var.smax < (1 << 63) - 1:
        parts.append(f"smax={r0.var.smax}")
    return " ".join(parts) or "unknown scalar value"


def check_callback_return(env: Env, r0: Reg, lo: int = 0, hi: int = 1) -> None:
    """``prepare_func_exit`` for a bpf_loop / for_each_map_elem callback."""
    if not r0.is_scalar:
        raise Reject(M.CALLBACK_NOT_SCALAR)
    demand_precision(env, r0)
    if r0.var.smin < lo or r0.var.smax > hi:
        raise Reject(M.CALLBACK_RANGE, bounds=_bounds_text(r0), lo=lo, hi=hi)


__all__ = [
    "NOT_INIT",
    "OR_NULL_BASE",
    "Env",
    "Reject",
    "check_helper_args",
    "check_mem_access",
    "check_return",
    "check_write_reg",
    "read_reg",
]
