/* Socket filter: keeps UDP datagrams to port 53 (whole packet), truncates other UDP to
 * 64 bytes, drops the rest.  Uses the legacy LD_ABS loads (llvm.bpf.load.*) and
 * bpf_skb_load_bytes; a socket filter sees the packet from the network header. */
#include "common.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

SEC("socket")
int udp53(struct __sk_buff *skb)
{
	__u8 vihl;
	__u32 ihl;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (load_byte(skb, offsetof(struct iphdr, protocol)) != IPPROTO_UDP)
		return 0;
	if (bpf_skb_load_bytes(skb, 0, &vihl, 1) < 0)
		return 0;
	ihl = (vihl & 0xf) * 4;
	if (load_half(skb, ihl + offsetof(struct udphdr, dest)) == 53)
		return skb->len;
	return 64;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
