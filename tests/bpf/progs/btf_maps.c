/* BTF-defined maps of several kinds: a hash keyed by a struct (flow), an LRU hash, a
 * per-CPU array and an LPM trie (map_flags through __uint); a tc classifier that counts
 * flows and marks packets whose source is in a prefix. */
#include "common.h"

struct flow {
	__be32 saddr;
	__be32 daddr;
	__u8 proto;
	__u8 pad[3];
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
};

struct lpm_v4 {
	__u32 prefixlen;
	__be32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow);
	__type(value, struct flow_stats);
	__uint(max_entries, 1024);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
	__uint(max_entries, 128);
} last_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v4);
	__type(value, __u32);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} prefixes SEC(".maps");

SEC("classifier")
int tc_flows(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct flow key = {};
	struct flow_stats *st, init = {1, 0};
	struct lpm_v4 lk;
	__u32 zero = 0, *mark;
	__u64 *tot, now = 7;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.proto = ip->protocol;
	st = bpf_map_lookup_elem(&flows, &key);
	if (st) {
		st->packets++;
		st->bytes += skb->len;
	} else {
		init.bytes = skb->len;
		bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST);
	}
	bpf_map_update_elem(&last_seen, &key.saddr, &now, BPF_ANY);
	tot = bpf_map_lookup_elem(&totals, &zero);
	if (tot)
		*tot += skb->len;
	lk.prefixlen = 32;
	lk.addr = ip->saddr;
	mark = bpf_map_lookup_elem(&prefixes, &lk);
	if (mark)
		skb->mark = *mark;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
