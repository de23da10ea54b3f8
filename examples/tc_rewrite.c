// SPDX-License-Identifier: GPL-2.0
/* tc packet rewriter: DNAT for one service.  IPv4 TCP packets to
 * 10.0.0.1:80 are redirected to 10.0.0.2:8080; the IP header checksum is
 * fixed with bpf_l3_csum_replace and the TCP checksum (which covers the
 * addresses through the pseudo header, and the port) with
 * bpf_l4_csum_replace.  Every rewrite is counted. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define OLD_ADDR 0x0a000001 /* 10.0.0.1 */
#define NEW_ADDR 0x0a000002 /* 10.0.0.2 */
#define OLD_PORT 80
#define NEW_PORT 8080

#define IP_OFF ETH_HLEN
#define TCP_OFF (ETH_HLEN + sizeof(struct iphdr))
#define IP_DADDR_OFF (IP_OFF + offsetof(struct iphdr, daddr))
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define TCP_DPORT_OFF (TCP_OFF + offsetof(struct tcphdr, dest))
#define TCP_CSUM_OFF (TCP_OFF + offsetof(struct tcphdr, check))

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} rewrites SEC(".maps");

SEC("tc")
int tc_rewrite(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + IP_OFF;
	struct tcphdr *tcp = data + TCP_OFF;
	__u32 old_addr = bpf_htonl(OLD_ADDR), new_addr = bpf_htonl(NEW_ADDR);
	__u16 old_port = bpf_htons(OLD_PORT), new_port = bpf_htons(NEW_PORT);
	__u32 zero = 0;
	__u64 *n;

	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
	if (ip->daddr != old_addr || tcp->dest != old_port)
		return TC_ACT_OK;

	/* The TCP checksum first: its pseudo header sees the address change. */
	bpf_l4_csum_replace(skb, TCP_CSUM_OFF, old_addr, new_addr, BPF_F_PSEUDO_HDR | sizeof(new_addr));
	bpf_l4_csum_replace(skb, TCP_CSUM_OFF, old_port, new_port, sizeof(new_port));
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr));
	bpf_skb_store_bytes(skb, IP_DADDR_OFF, &new_addr, sizeof(new_addr), 0);
	bpf_skb_store_bytes(skb, TCP_DPORT_OFF, &new_port, sizeof(new_port), 0);

	n = bpf_map_lookup_elem(&rewrites, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
