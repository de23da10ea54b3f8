// SPDX-License-Identifier: GPL-2.0
/* Tail-call dispatcher: an XDP program looks at the EtherType and tail-calls
 * the handler for it from a prog_array whose slots are filled from the
 * object itself (libbpf's .values): slot 0 = IPv4 handler, slot 1 = IPv6
 * handler, slot 2 left empty (ARP: the tail call fails and the dispatcher
 * falls through).  Each program counts itself in `hits`. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum { SLOT_IPV4, SLOT_IPV6, SLOT_ARP, SLOT_DISPATCH };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&hits, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("xdp")
int handle_ipv4(struct xdp_md *ctx)
{
	hit(SLOT_IPV4);
	return XDP_DROP;
}

SEC("xdp")
int handle_ipv6(struct xdp_md *ctx)
{
	hit(SLOT_IPV6);
	return XDP_TX;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump_table SEC(".maps") = {
	.values = {
		[SLOT_IPV4] = (void *)&handle_ipv4,
		[SLOT_IPV6] = (void *)&handle_ipv6,
	},
};

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	hit(SLOT_DISPATCH);
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &jump_table, SLOT_IPV4);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		bpf_tail_call(ctx, &jump_table, SLOT_IPV6);
	else
		bpf_tail_call(ctx, &jump_table, SLOT_ARP);
	/* Only reached when the slot is empty. */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
