// SPDX-License-Identifier: GPL-2.0
/* XDP firewall: drop IPv4 packets whose source is in a blocked prefix (LPM
 * trie) or whose TCP/UDP destination port is blocked (hash map); count every
 * verdict in an array indexed by the XDP action. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct ipv4_lpm_key {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipv4_lpm_key);
	__type(value, __u32);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocked_nets SEC(".maps");

/* key: destination port in host byte order; value: packets dropped for it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, __u64);
	__uint(max_entries, 128);
} blocked_ports SEC(".maps");

/* key: XDP action (XDP_DROP = 1, XDP_PASS = 2); value: packets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} verdicts SEC(".maps");

static __always_inline int count(__u32 action)
{
	__u64 *n = bpf_map_lookup_elem(&verdicts, &action);

	if (n)
		__sync_fetch_and_add(n, 1);
	return action;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct ipv4_lpm_key key;
	__u64 *dropped;
	__u16 port;

	if ((void *)(eth + 1) > data_end)
		return count(XDP_DROP);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(XDP_PASS);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return count(XDP_DROP);

	key.prefixlen = 32;
	key.addr = ip->saddr;
	if (bpf_map_lookup_elem(&blocked_nets, &key))
		return count(XDP_DROP);

	if (ip->ihl != 5)
		return count(XDP_PASS); /* keep it simple: no IP options */
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return count(XDP_DROP);
		port = bpf_ntohs(tcp->dest);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return count(XDP_DROP);
		port = bpf_ntohs(udp->dest);
	} else {
		return count(XDP_PASS);
	}
	dropped = bpf_map_lookup_elem(&blocked_ports, &port);
	if (dropped) {
		__sync_fetch_and_add(dropped, 1);
		return count(XDP_DROP);
	}
	return count(XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
