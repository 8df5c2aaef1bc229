/* Rejected by the verifier: reads the EtherType without comparing against data_end first
 * ("invalid access to packet").  Builds fine; loading must fail, in the kernel and here. */
#include "common.h"

SEC("xdp")
int xdp_no_bounds(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
