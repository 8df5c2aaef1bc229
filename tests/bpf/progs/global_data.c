/* Global data: a .rodata config (const volatile, as skeletons patch it), a .data counter
 * with an initial value, a .bss array, and a bpf_printk format string (a static const in
 * .rodata); every access is an lddw with a value relocation into a one-element array map. */
#include "common.h"

const volatile __u32 drop_proto = 17;
const volatile __u8 magic[4] = {0xde, 0xad, 0xbe, 0xef};
__u64 packets = 1000;
__u64 bytes_by_proto[4];
__u32 last_len;

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 len = data_end - data;

	packets++;
	last_len = len;
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	bytes_by_proto[ip->protocol & 3] += len;
	if (ip->protocol == drop_proto && ((__u8 *)ip)[19] == magic[3]) {
		bpf_printk("drop proto %u len %u", ip->protocol, len);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
