// SPDX-License-Identifier: GPL-2.0
/* kprobe counter: count calls of do_unlinkat in a per-CPU array and send
 * one event per call (pid, tgid, the count seen on this CPU) through a ring
 * buffer. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 tgid;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

SEC("kprobe/do_unlinkat")
int count_unlinkat(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct event *e;
	__u64 *n;

	n = bpf_map_lookup_elem(&calls, &zero);
	if (!n)
		return 0;
	*n += 1; /* per-CPU: no other CPU writes this slot */

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->count = *n;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
