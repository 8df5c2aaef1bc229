/* Legacy map definitions: struct bpf_map_def in the "maps" section (what iproute2 and old
 * samples use; libbpf 1.x dropped the struct from its headers, so it is declared here with
 * the layout libbpf still parses: type, key_size, value_size, max_entries, map_flags). */
#include "common.h"

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") port_hits = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u16),
	.value_size = sizeof(__u64),
	.max_entries = 64,
};

struct bpf_map_def SEC("maps") verdicts = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 4,
};

SEC("xdp")
int xdp_legacy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u16 port;
	__u64 one = 1, *hits;
	__u32 idx, *verdict;

	if ((void *)(udp + 1) > data_end || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	port = bpf_ntohs(udp->dest);
	hits = bpf_map_lookup_elem(&port_hits, &port);
	if (hits)
		__sync_fetch_and_add(hits, 1);
	else
		bpf_map_update_elem(&port_hits, &port, &one, BPF_ANY);
	idx = port & 3;
	verdict = bpf_map_lookup_elem(&verdicts, &idx);
	if (verdict && *verdict)
		return *verdict;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
