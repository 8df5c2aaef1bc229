/* Several programs in one object sharing a map: XDP, tc ingress/egress, socket filter and a
 * kprobe-style section (recognised, but not runnable here). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4);
} hits SEC(".maps");

static __always_inline int hit(__u32 idx, int ret)
{
	__u32 *v = bpf_map_lookup_elem(&hits, &idx);
	if (v)
		*v += 1;
	return ret;
}

SEC("xdp")
int m_xdp(struct xdp_md *ctx) { return hit(0, XDP_PASS); }

SEC("tc/ingress")
int m_tc_in(struct __sk_buff *skb) { return hit(1, TC_ACT_OK); }

SEC("tc/egress")
int m_tc_out(struct __sk_buff *skb) { return hit(2, TC_ACT_SHOT); }

SEC("socket")
int m_sock(struct __sk_buff *skb) { return hit(3, skb->len); }

SEC("kprobe/ip_rcv")
int m_kprobe(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
