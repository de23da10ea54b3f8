// SPDX-License-Identifier: GPL-2.0
/* BTF-defined map-in-map: an array_of_maps whose slots point at one inner
 * counter array per IP protocol (slot 0: TCP, slot 1: UDP), filled from the
 * object's .values.  Slot 2 (anything else) is empty: the program drops
 * those packets.  A hash_of_maps keyed by protocol number holds the same
 * inner maps for lookups by value. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct counter_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
};

struct counter_map tcp_counts SEC(".maps");
struct counter_map udp_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct counter_map);
} by_slot SEC(".maps") = {
	.values = { &tcp_counts, &udp_counts },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct counter_map);
} by_proto SEC(".maps");

SEC("xdp")
int count_by_protocol(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 slot, proto, zero = 0;
	void *inner;
	__u64 *n;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = ip->protocol;
	slot = proto == IPPROTO_TCP ? 0 : proto == IPPROTO_UDP ? 1 : 2;
	inner = bpf_map_lookup_elem(&by_slot, &slot);
	if (!inner)
		return XDP_DROP;
	n = bpf_map_lookup_elem(inner, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	/* The same counter reached through the hash of maps, if registered. */
	inner = bpf_map_lookup_elem(&by_proto, &proto);
	if (inner) {
		n = bpf_map_lookup_elem(inner, &zero);
		if (n)
			__sync_fetch_and_add(n, 100);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
