// SPDX-License-Identifier: GPL-2.0
/* bpf_loop: sum the squares 0, 1, 4, 9, ... in a callback until the sum
 * passes `limit` or `iterations` callbacks have run.  The callback gets a
 * pointer to a context struct on the caller's stack.  result[0] = the sum,
 * result[1] = what bpf_loop returned (callbacks run); the program returns
 * the sum. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 iterations = 20;
const volatile __u64 limit = 250;

struct loop_ctx {
	__u64 sum;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} result SEC(".maps");

static long add_square(__u64 index, void *data)
{
	struct loop_ctx *lc = data;

	lc->sum += index * index;
	return lc->sum > limit ? 1 : 0; /* 1 stops the loop */
}

static __always_inline void store(__u32 slot, __u64 value)
{
	bpf_map_update_elem(&result, &slot, &value, BPF_ANY);
}

SEC("socket")
int sum_squares(struct __sk_buff *skb)
{
	struct loop_ctx lc = { .sum = 0 };
	long runs;

	runs = bpf_loop(iterations, add_square, &lc, 0);
	store(0, lc.sum);
	store(1, runs);
	return lc.sum;
}

char LICENSE[] SEC("license") = "GPL";
