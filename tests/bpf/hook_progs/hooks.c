/* Programs for the datapath hook tests (tests/bpf/test_hooks*.py): one object, one section
 * per behaviour (ip and tc pick a program by section and force its type), so the same .o
 * attaches with netstack's and the kernel's ip/tc.
 * Target devices are fixed ifindexes (the tests create them with `index N`). */
#include "../progs/common.h"

#define REDIRECT_IFINDEX 20

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} xdp_seen SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&xdp_seen, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* XDP_TX: swap the MAC addresses and send the frame back out. */
SEC("xdp")
int xdp_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	count(0);
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

/* XDP_REDIRECT to ifindex REDIRECT_IFINDEX for IPv4, XDP_DROP for IPv6, XDP_PASS else. */
SEC("xdp_redirect")
int xdp_redir(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		count(1);
		return bpf_redirect(REDIRECT_IFINDEX, 0);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		count(2);
		return XDP_DROP;
	}
	count(3);
	return XDP_PASS;
}

/* Pops 4 bytes after the MAC addresses (a VLAN-tag-sized hole) when the EtherType is
 * 0x88b5 (local experimental): the 12 address bytes move forward with adjust_head. */
SEC("xdp_head")
int xdp_pop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char macs[12];

	if (data + 18 > data_end)
		return XDP_PASS;
	if (((unsigned char *)data)[12] != 0x88 || ((unsigned char *)data)[13] != 0xb5)
		return XDP_PASS;
	__builtin_memcpy(macs, data, 12);
	if (bpf_xdp_adjust_head(ctx, 4))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 12 > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, macs, 12);
	return XDP_PASS;
}

/* tc: UDP to port 9 is dropped; other IPv4 gets mark 0x77 and priority 5; ICMP is
 * redirected out of ifindex REDIRECT_IFINDEX; everything else passes. */
SEC("tc")
int tc_policy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;

	if (data + ETH_HLEN + sizeof(*ip) + 4 > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_UDP && ip->ihl == 5) {
		struct udphdr *udp = (void *)(ip + 1);
		if (udp->dest == bpf_htons(9))
			return TC_ACT_SHOT;
	}
	if (ip->protocol == IPPROTO_ICMP)
		return bpf_redirect(REDIRECT_IFINDEX, 0);
	skb->mark = 0x77;
	skb->priority = 5;
	return TC_ACT_OK;
}

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

/* Socket filter for a SOCK_RAW packet socket (data from the MAC header): UDP to port 53
 * whole, other UDP cut to 64 bytes, everything else not delivered to the socket. */
SEC("socket")
int sock_udp53(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol)) != IPPROTO_UDP)
		return 0;
	if (load_half(skb, ETH_HLEN + 20 + offsetof(struct udphdr, dest)) == 53)
		return skb->len;
	return 64;
}

/* netstack's tracing ctx (netstack/core/hooks.py TRACE_CTX). */
struct netstack_trace_ctx {
	__u64 pkt_id;
	__u32 len;
	__u32 protocol;
	__u32 ifindex;
	__u32 reason;
	__u32 mark;
	__u32 pkt_type;
	__u64 tstamp;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} drop_reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} drop_log SEC(".maps");

struct drop_rec {
	__u64 pkt_id;
	__u32 reason;
	__u32 ifindex;
};

/* Counts drops per reason and logs (packet id, reason, ifindex) to a ring buffer. */
SEC("tracepoint/skb/kfree_skb")
int count_drops(struct netstack_trace_ctx *ctx)
{
	__u32 reason = ctx->reason;
	__u64 one = 1, *v;
	struct drop_rec *rec;

	v = bpf_map_lookup_elem(&drop_reasons, &reason);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&drop_reasons, &reason, &one, BPF_NOEXIST);
	rec = bpf_ringbuf_reserve(&drop_log, sizeof(*rec), 0);
	if (!rec)
		return 0;
	rec->pkt_id = ctx->pkt_id;
	rec->reason = reason;
	rec->ifindex = ctx->ifindex;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
