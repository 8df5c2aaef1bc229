/* bpf-to-bpf calls: a global function and static __noinline functions in .text, one calling
 * another (two frames deep), each with its own stack; one .text function is never called
 * (the loader must not append it, or the kernel would reject unreachable code). */
#include "common.h"

static __noinline __u32 fold(__u32 x)
{
	volatile __u8 buf[64];
	buf[x & 63] = x;
	return (x >> 16) + (x & 0xffff) + buf[x & 63];
}

static __noinline __u32 sum_words(__u32 a, __u32 b, __u32 c)
{
	volatile __u64 scratch[8];
	scratch[a & 7] = a;
	return fold(a + b + c) + (__u32)scratch[a & 7] - a;
}

__noinline int classify(__u32 len)
{
	if (len < 64)
		return XDP_DROP;
	return XDP_PASS;
}

__noinline int never_called(int x)
{
	return x * 3;
}

SEC("xdp")
int xdp_calls(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *w = data;
	__u32 len = data_end - data;

	if ((void *)(w + 3) > data_end)
		return XDP_ABORTED;
	if (sum_words(w[0], w[1], w[2]) == 0x1234)
		return XDP_TX;
	return classify(len);
}

SEC("tc")
int tc_calls(struct __sk_buff *skb)
{
	skb->mark = fold(skb->len) + sum_words(skb->len, 1, 2);
	return classify(skb->len) == XDP_PASS ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
