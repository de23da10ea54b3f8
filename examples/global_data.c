// SPDX-License-Identifier: GPL-2.0
/* Global data and subprograms.  Configuration lives in .rodata (frozen
 * before the program is loaded), a run counter with a non-zero start in
 * .data, running totals in .bss.  The arithmetic is done by subprograms that
 * are real bpf-to-bpf calls (noinline): a static one, a global one and one
 * that calls another.
 *
 * Each run: runs += 1; total_len += skb->len; last_score = score(skb->len);
 * returns last_score. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 weight = 3;  /* .rodata */
const volatile __u32 bias = 7;    /* .rodata */
__u64 runs = 100;                 /* .data */
__u64 total_len;                  /* .bss */
__u32 last_score;                 /* .bss */

static __noinline __u32 scale(__u32 x)
{
	return x * weight;
}

static __noinline __u32 shift(__u32 x)
{
	return scale(x) + bias;
}

/* Global: the kernel verifies it on its own, for any argument value. */
__noinline __u32 clamp(__u32 x, __u32 limit)
{
	return x > limit ? limit : x;
}

SEC("socket")
int score_packet(struct __sk_buff *skb)
{
	__u32 len = skb->len;

	runs += 1;
	total_len += len;
	last_score = clamp(shift(len), 1000);
	return last_score;
}

char LICENSE[] SEC("license") = "GPL";
