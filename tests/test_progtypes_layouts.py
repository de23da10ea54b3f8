"""Program type descriptions: which context accesses each type allows (the
kernel's *_is_valid_access rules, worked out by hand from net/core/filter.c
and kernel/trace/bpf_trace.c), helpers, return values, verdict names."""

from __future__ import annotations

import pytest

from ebpfvm.helpers.ids import helper_id
from ebpfvm.progtypes import (PROG_TYPES, ContextAccessError, FieldKind, UnknownProgType, get_prog_type)

R, W = False, True


def ok(type_name: str, offset: int, size: int, write: bool, attach: str | None = None) -> str:
    """The field an allowed access touches (ContextAccessError otherwise)."""
    return get_prog_type(type_name).layout_for(attach).check(offset, size, write).name


def refused(type_name: str, offset: int, size: int, write: bool, attach: str | None = None) -> ContextAccessError:
    with pytest.raises(ContextAccessError) as info:
        get_prog_type(type_name).layout_for(attach).check(offset, size, write)
    return info.value


# -- xdp_md -----------------------------------------------------------------------------------
@pytest.mark.parametrize("offset,name", [(0, "data"), (4, "data_end"), (8, "data_meta"), (12, "ingress_ifindex"),
                                         (16, "rx_queue_index")])
def test_xdp_fields_are_read_whole(offset: int, name: str) -> None:
    assert ok("xdp", offset, 4, R) == name
    for size in (1, 2):
        assert refused("xdp", offset, size, R).reason == "size must be 4"
    assert refused("xdp", offset, 4, W).reason == "read-only for this program type"


def test_xdp_egress_ifindex_only_for_devmap_programs() -> None:
    err = refused("xdp", 20, 4, R)
    assert (err.field, err.offset, err.size) == ("egress_ifindex", 20, 4)
    assert str(err).endswith("invalid access to xdp_md at offset 20 size 4 "
                             "(read of egress_ifindex: not accessible to this program type)")
    assert ok("xdp", 20, 4, R, attach="xdp_devmap") == "egress_ifindex"


def test_xdp_access_past_the_struct_and_8_byte_loads() -> None:
    assert "invalid access to xdp_md at offset 20 size 8" in str(refused("xdp", 20, 8, R))
    assert refused("xdp", 24, 4, R).reason == "outside the 24-byte struct"
    assert refused("xdp", 0, 8, R).reason == "size must be 4"
    assert refused("xdp", 2, 4, R).reason == "offset is not a multiple of the size"


def test_xdp_pointer_fields_are_rewritten() -> None:
    fields = {f.name: f.kind for f in get_prog_type("xdp").context.fields}
    assert fields["data"] is FieldKind.PACKET
    assert fields["data_end"] is FieldKind.PACKET_END
    assert fields["data_meta"] is FieldKind.PACKET_META
    assert fields["ingress_ifindex"] is FieldKind.VALUE


# -- __sk_buff ------------------------------------------------------------------------------
# (type, offset, size, write, field or None when refused), from bpf_skb_is_valid_access
# and sk_filter_/tc_cls_act_/cg_skb_is_valid_access.
SKB_CASES = [
    # narrow reads of u32 fields, whole writes only where the type allows
    ("socket_filter", 0, 4, R, "len"), ("socket_filter", 0, 1, R, "len"), ("socket_filter", 2, 2, R, "len"),
    ("socket_filter", 3, 1, R, "len"), ("socket_filter", 0, 8, R, None), ("socket_filter", 1, 2, R, None),
    ("socket_filter", 8, 4, W, None),  # mark: socket filters write only cb
    ("socket_filter", 48, 4, W, "cb"), ("socket_filter", 48, 8, W, "cb"), ("socket_filter", 64, 4, W, "cb"),
    ("socket_filter", 66, 2, W, "cb"), ("socket_filter", 64, 8, R, None),  # cb[4] as u64 runs past cb
    ("socket_filter", 52, 8, R, None),  # misaligned u64
    ("socket_filter", 76, 4, R, None), ("socket_filter", 80, 4, R, None), ("socket_filter", 140, 4, R, None),
    ("socket_filter", 72, 4, R, None),  # tc_classid
    ("socket_filter", 88, 4, R, None), ("socket_filter", 92, 4, R, None),  # socket fields
    ("socket_filter", 152, 8, R, None), ("socket_filter", 160, 4, R, None), ("socket_filter", 184, 8, R, None),
    ("socket_filter", 168, 8, R, "sk"), ("socket_filter", 168, 4, R, None),
    ("socket_filter", 144, 8, R, None),  # flow_keys: never
    ("socket_filter", 176, 4, R, "gso_size"), ("socket_filter", 164, 2, R, "gso_segs"),
    ("socket_filter", 180, 1, R, None), ("socket_filter", 181, 1, R, None),  # tstamp_type, padding
    ("socket_filter", 84, 4, R, "napi_id"), ("socket_filter", 68, 4, R, "hash"),
    # tc: direct packet access, more writes, no socket fields
    ("sched_cls", 76, 4, R, "data"), ("sched_cls", 80, 4, R, "data_end"), ("sched_cls", 140, 4, R, "data_meta"),
    ("sched_cls", 76, 2, R, None), ("sched_cls", 78, 2, R, None), ("sched_cls", 76, 4, W, None),
    ("sched_cls", 8, 4, W, "mark"), ("sched_cls", 8, 2, W, None), ("sched_cls", 44, 4, W, "tc_index"),
    ("sched_cls", 32, 4, W, "priority"), ("sched_cls", 72, 4, W, "tc_classid"), ("sched_cls", 12, 4, W,
                                                                                  "queue_mapping"),
    ("sched_cls", 152, 8, W, "tstamp"), ("sched_cls", 152, 4, W, None), ("sched_cls", 0, 4, W, None),
    ("sched_cls", 16, 4, W, None), ("sched_cls", 88, 4, R, None), ("sched_cls", 132, 4, R, None),
    ("sched_cls", 160, 4, R, "wire_len"), ("sched_cls", 180, 1, R, "tstamp_type"), ("sched_cls", 180, 2, R, None),
    ("sched_cls", 180, 1, W, None), ("sched_cls", 184, 8, R, "hwtstamp"), ("sched_cls", 184, 8, W, None),
    ("sched_act", 8, 4, W, "mark"),
    # cgroup skb: data but no data_meta, socket fields readable, few writes
    ("cgroup_skb", 76, 4, R, "data"), ("cgroup_skb", 80, 4, R, "data_end"), ("cgroup_skb", 140, 4, R, None),
    ("cgroup_skb", 72, 4, R, None), ("cgroup_skb", 160, 4, R, None),
    ("cgroup_skb", 88, 4, R, "family"), ("cgroup_skb", 88, 1, R, "family"), ("cgroup_skb", 92, 4, R, "remote_ip4"),
    ("cgroup_skb", 92, 2, R, None), ("cgroup_skb", 100, 4, R, "remote_ip6"), ("cgroup_skb", 112, 4, R, "remote_ip6"),
    ("cgroup_skb", 128, 4, R, "local_ip6"), ("cgroup_skb", 100, 8, R, None), ("cgroup_skb", 136, 2, R,
                                                                              "local_port"),
    ("cgroup_skb", 8, 4, W, "mark"), ("cgroup_skb", 32, 4, W, "priority"), ("cgroup_skb", 152, 8, W, "tstamp"),
    ("cgroup_skb", 44, 4, W, None), ("cgroup_skb", 72, 4, W, None),
]


@pytest.mark.parametrize("type_name,offset,size,write,field", SKB_CASES)
def test_sk_buff_access_rules(type_name: str, offset: int, size: int, write: bool, field: str | None) -> None:
    if field is None:
        err = refused(type_name, offset, size, write)
        assert (err.struct, err.offset, err.size, err.write) == ("__sk_buff", offset, size, write)
    else:
        assert ok(type_name, offset, size, write) == field


def test_refusals_name_the_field_and_why() -> None:
    assert refused("socket_filter", 76, 4, R).field == "data"
    assert refused("socket_filter", 8, 4, W).reason == "read-only for this program type"
    assert refused("socket_filter", 181, 1, R).reason == "padding"
    assert refused("socket_filter", 192, 4, R).reason == "outside the 192-byte struct"
    assert refused("cgroup_skb", 92, 2, R).reason == "size must be 4"
    assert refused("socket_filter", 64, 8, R).reason == "runs past the end of the field (20 bytes)"


# -- tracing -----------------------------------------------------------------------------------
def test_kprobe_pt_regs_any_aligned_load() -> None:
    assert ok("kprobe", 0, 8, R) == "r15"
    assert ok("kprobe", 80, 8, R) == "ax"
    assert ok("kprobe", 112, 8, R) == "di"
    assert ok("kprobe", 116, 4, R) == "di"
    assert ok("kprobe", 161, 1, R) == "ss"
    assert refused("kprobe", 104, 8, W).reason == "read-only for this program type"
    assert refused("kprobe", 4, 8, R).reason == "offset is not a multiple of the size"
    assert refused("kprobe", 168, 8, R).reason == "outside the 168-byte struct"


def test_tracepoint_record_skips_common_fields_and_is_read_only() -> None:
    assert ok("tracepoint", 8, 8, R) == "record"
    assert ok("tracepoint", 2047, 1, R) == "record"
    assert refused("tracepoint", 0, 8, R).reason == "padding"
    assert refused("tracepoint", 4, 4, R).reason == "padding"
    assert refused("tracepoint", 16, 4, W).reason == "read-only for this program type"
    assert refused("tracepoint", 2048, 1, R).reason == "outside the 2048-byte struct"


def test_raw_tracepoint_args() -> None:
    assert ok("raw_tracepoint", 0, 8, R) == "args[0]"
    assert ok("raw_tp", 88, 8, R) == "args[11]"
    assert ok("raw_tp", 12, 4, R) == "args[1]"
    assert refused("raw_tp", 96, 8, R).reason == "outside the 96-byte struct"
    assert refused("raw_tp", 0, 8, W).reason == "read-only for this program type"


# -- names, helpers, verdicts -----------------------------------------------------------------
@pytest.mark.parametrize("alias,name", [("tc", "sched_cls"), ("classifier", "sched_cls"), ("socket", "socket_filter"),
                                        ("BPF_PROG_TYPE_XDP", "xdp"), ("raw_tp", "raw_tracepoint"),
                                        ("kretprobe", "kprobe"), ("tp", "tracepoint"), ("action", "sched_act")])
def test_aliases(alias: str, name: str) -> None:
    assert get_prog_type(alias).name == name


def test_unknown_type_is_a_user_error() -> None:
    with pytest.raises(UnknownProgType, match="'perf_event' is not supported"):
        get_prog_type("perf_event")


@pytest.mark.parametrize("type_name,allowed,forbidden", [
    ("xdp", ["xdp_adjust_head", "xdp_adjust_tail", "redirect_map", "csum_diff", "tail_call", "loop"],
     ["skb_store_bytes", "skb_load_bytes", "l3_csum_replace", "probe_read"]),
    ("socket_filter", ["skb_load_bytes", "map_lookup_elem", "trace_printk"],
     ["skb_store_bytes", "xdp_adjust_head", "redirect", "l4_csum_replace"]),
    ("sched_cls", ["skb_store_bytes", "l3_csum_replace", "l4_csum_replace", "redirect", "csum_diff"],
     ["xdp_adjust_head", "redirect_map"]),
    ("cgroup_skb", ["skb_load_bytes", "sk_fullsock"], ["skb_store_bytes", "redirect"]),
    ("kprobe", ["probe_read_kernel", "get_current_pid_tgid", "override_return", "perf_event_output"],
     ["skb_load_bytes", "xdp_adjust_head"]),
    ("raw_tracepoint", ["get_stack"], ["override_return"]),
])
def test_helpers_per_type(type_name: str, allowed: list[str], forbidden: list[str]) -> None:
    ptype = get_prog_type(type_name)
    for name in allowed:
        assert ptype.allows_helper(helper_id(name)), name
    for name in forbidden:
        assert not ptype.allows_helper(helper_id(name)), name


def test_return_ranges() -> None:
    assert get_prog_type("cgroup_skb").return_range == (0, 1)
    assert all(t.return_range is None for t in PROG_TYPES if t.name != "cgroup_skb")


@pytest.mark.parametrize("type_name,r0,name", [
    ("xdp", 0, "XDP_ABORTED"), ("xdp", 2, "XDP_PASS"), ("xdp", 4, "XDP_REDIRECT"), ("xdp", 5, None),
    ("xdp", (7 << 32) | 3, "XDP_TX"),  # the kernel sees the low 32 bits
    ("sched_cls", 0, "TC_ACT_OK"), ("sched_cls", 2, "TC_ACT_SHOT"), ("sched_cls", 0xFFFF_FFFF, "TC_ACT_UNSPEC"),
    ("sched_cls", 0xFFFF_FFFF_FFFF_FFFF, "TC_ACT_UNSPEC"), ("sched_cls", 9, None),
    ("socket_filter", 0, None), ("kprobe", 0, None),
])
def test_action_names(type_name: str, r0: int, name: str | None) -> None:
    assert get_prog_type(type_name).action_name(r0) == name
