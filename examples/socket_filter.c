// SPDX-License-Identifier: GPL-2.0
/* Socket filter: keep only UDP datagrams to port 53 (DNS).  A socket filter
 * sees the packet from its network header on and returns how many bytes of
 * it to keep: all of it (skb->len) or none.  counts[0] = kept, counts[1] =
 * dropped. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} counts SEC(".maps");

static __always_inline int verdict(__u32 slot, int keep)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	return keep;
}

SEC("socket")
int dns_only(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;

	if (skb->protocol != bpf_htons(0x0800))
		return verdict(1, 0);
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		return verdict(1, 0);
	if (ip.protocol != IPPROTO_UDP || ip.ihl != 5)
		return verdict(1, 0);
	if (bpf_skb_load_bytes(skb, sizeof(ip), &udp, sizeof(udp)) < 0)
		return verdict(1, 0);
	if (udp.dest != bpf_htons(53))
		return verdict(1, 0);
	return verdict(0, skb->len);
}

char LICENSE[] SEC("license") = "GPL";
