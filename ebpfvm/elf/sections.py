"""Section name -> program type and expected attach type, as libbpf decides.

The table follows libbpf's ``section_defs`` (tools/lib/bpf/libbpf.c) in its
order, because the first matching entry wins ("tc/ingress" before "tc").
Patterns use libbpf's three forms:

* ``name``   exact match only;
* ``name+``  exactly ``name`` or ``name/anything`` (``kprobe/do_unlinkat``);
* ``name/``  must have something after the slash.

A leading ``?`` (libbpf: "do not load automatically") is ignored for
matching.  Names are the kernel enums' without prefix, lower case, as in
:mod:`ebpfvm.kernel.constants`.  Entries libbpf has for attach types newer
than that table (fsession, multi-function fentry) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SectionDef:
    pattern: str
    prog_type: str
    expected_attach_type: str | None = None
    sleepable: bool = False
    # Needs the BTF id of a kernel function to attach to (fentry, lsm, iter...).
    attach_btf: bool = False
    xdp_frags: bool = False

    def matches(self, section: str) -> bool:
        pattern = self.pattern
        if pattern.endswith("/"):
            return section.startswith(pattern)
        if pattern.endswith("+"):
            stem = pattern[:-1]
            return section == stem or section.startswith(stem + "/")
        return section == pattern


def _d(pattern: str, prog_type: str, attach: str | None = None, *flags: str) -> SectionDef:
    return SectionDef(pattern, prog_type, attach, sleepable="sleepable" in flags,
                      attach_btf="attach_btf" in flags, xdp_frags="frags" in flags)


S, B, F = "sleepable", "attach_btf", "frags"

SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", "socket_filter"),
    _d("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
    _d("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
    _d("kprobe+", "kprobe"),
    _d("uprobe+", "kprobe"),
    _d("uprobe.s+", "kprobe", None, S),
    _d("kretprobe+", "kprobe"),
    _d("uretprobe+", "kprobe"),
    _d("uretprobe.s+", "kprobe", None, S),
    _d("kprobe.multi+", "kprobe", "trace_kprobe_multi"),
    _d("kretprobe.multi+", "kprobe", "trace_kprobe_multi"),
    _d("kprobe.session+", "kprobe", "trace_kprobe_session"),
    _d("uprobe.multi+", "kprobe", "trace_uprobe_multi"),
    _d("uretprobe.multi+", "kprobe", "trace_uprobe_multi"),
    _d("uprobe.session+", "kprobe", "trace_uprobe_session"),
    _d("uprobe.multi.s+", "kprobe", "trace_uprobe_multi", S),
    _d("uretprobe.multi.s+", "kprobe", "trace_uprobe_multi", S),
    _d("uprobe.session.s+", "kprobe", "trace_uprobe_session", S),
    _d("ksyscall+", "kprobe"),
    _d("kretsyscall+", "kprobe"),
    _d("usdt+", "kprobe"),
    _d("usdt.s+", "kprobe", None, S),
    _d("tc/ingress", "sched_cls", "tcx_ingress"),
    _d("tc/egress", "sched_cls", "tcx_egress"),
    _d("tcx/ingress", "sched_cls", "tcx_ingress"),
    _d("tcx/egress", "sched_cls", "tcx_egress"),
    _d("tc", "sched_cls"),
    _d("classifier", "sched_cls"),
    _d("action", "sched_act"),
    _d("netkit/primary", "sched_cls", "netkit_primary"),
    _d("netkit/peer", "sched_cls", "netkit_peer"),
    _d("tracepoint+", "tracepoint"),
    _d("tp+", "tracepoint"),
    _d("tracepoint.s+", "tracepoint", None, S),
    _d("tp.s+", "tracepoint", None, S),
    _d("raw_tracepoint+", "raw_tracepoint"),
    _d("raw_tp+", "raw_tracepoint"),
    _d("raw_tracepoint.s+", "raw_tracepoint", None, S),
    _d("raw_tp.s+", "raw_tracepoint", None, S),
    _d("raw_tracepoint.w+", "raw_tracepoint_writable"),
    _d("raw_tp.w+", "raw_tracepoint_writable"),
    _d("tp_btf+", "tracing", "trace_raw_tp", B),
    _d("tp_btf.s+", "tracing", "trace_raw_tp", B, S),
    _d("fentry+", "tracing", "trace_fentry", B),
    _d("fmod_ret+", "tracing", "modify_return", B),
    _d("fexit+", "tracing", "trace_fexit", B),
    _d("fentry.s+", "tracing", "trace_fentry", B, S),
    _d("fmod_ret.s+", "tracing", "modify_return", B, S),
    _d("fexit.s+", "tracing", "trace_fexit", B, S),
    _d("freplace+", "ext", None, B),
    _d("lsm+", "lsm", "lsm_mac", B),
    _d("lsm.s+", "lsm", "lsm_mac", B, S),
    _d("lsm_cgroup+", "lsm", "lsm_cgroup", B),
    _d("iter+", "tracing", "trace_iter", B),
    _d("iter.s+", "tracing", "trace_iter", B, S),
    _d("syscall", "syscall", None, S),
    _d("xdp.frags/devmap", "xdp", "xdp_devmap", F),
    _d("xdp/devmap", "xdp", "xdp_devmap"),
    _d("xdp.frags/cpumap", "xdp", "xdp_cpumap", F),
    _d("xdp/cpumap", "xdp", "xdp_cpumap"),
    _d("xdp.frags", "xdp", "xdp", F),
    _d("xdp", "xdp", "xdp"),
    _d("perf_event", "perf_event"),
    _d("lwt_in", "lwt_in"),
    _d("lwt_out", "lwt_out"),
    _d("lwt_xmit", "lwt_xmit"),
    _d("lwt_seg6local", "lwt_seg6local"),
    _d("sockops", "sock_ops", "cgroup_sock_ops"),
    _d("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
    _d("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
    _d("sk_skb/verdict", "sk_skb", "sk_skb_verdict"),
    _d("sk_skb", "sk_skb"),
    _d("sk_msg", "sk_msg", "sk_msg_verdict"),
    _d("lirc_mode2", "lirc_mode2", "lirc_mode2"),
    _d("flow_dissector", "flow_dissector", "flow_dissector"),
    _d("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    _d("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"),
    _d("cgroup/skb", "cgroup_skb"),
    _d("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
    _d("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release"),
    _d("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    _d("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind"),
    _d("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind"),
    _d("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
    _d("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
    _d("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    _d("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
    _d("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect"),
    _d("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    _d("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    _d("cgroup/sendmsg_unix", "cgroup_sock_addr", "cgroup_unix_sendmsg"),
    _d("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    _d("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    _d("cgroup/recvmsg_unix", "cgroup_sock_addr", "cgroup_unix_recvmsg"),
    _d("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
    _d("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
    _d("cgroup/getpeername_unix", "cgroup_sock_addr", "cgroup_unix_getpeername"),
    _d("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
    _d("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
    _d("cgroup/getsockname_unix", "cgroup_sock_addr", "cgroup_unix_getsockname"),
    _d("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    _d("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
    _d("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
    _d("cgroup/dev", "cgroup_device", "cgroup_device"),
    _d("struct_ops+", "struct_ops"),
    _d("struct_ops.s+", "struct_ops", None, S),
    _d("sk_lookup", "sk_lookup", "sk_lookup"),
    _d("netfilter", "netfilter", "netfilter"),
)


def classify(section: str) -> SectionDef | None:
    """The first table entry matching ``section`` (None: libbpf would not know its type)."""
    name = section[1:] if section.startswith("?") else section
    return next((d for d in SECTION_DEFS if d.matches(name)), None)
