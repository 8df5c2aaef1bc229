/* tc: rewrites the IPv4 destination of UDP/TCP packets to 10.0.0.99 and the destination
 * port to 8080, fixing the IP header checksum with bpf_l3_csum_replace and the L4 checksum
 * with bpf_l4_csum_replace (pseudo-header flag for the address). */
#include "common.h"

#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

SEC("tc")
int tc_rewrite(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 l4_csum_off, l4_port_off;
	__be32 new_ip = bpf_htonl(0x0a000063);
	__be16 new_port = bpf_htons(8080);
	__be32 old_ip;
	__be16 old_port;

	if (data + ETH_HLEN + sizeof(*ip) + 8 > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_UDP) {
		l4_csum_off = ETH_HLEN + sizeof(*ip) + offsetof(struct udphdr, check);
		l4_port_off = ETH_HLEN + sizeof(*ip) + offsetof(struct udphdr, dest);
	} else if (ip->protocol == IPPROTO_TCP) {
		l4_csum_off = ETH_HLEN + sizeof(*ip) + offsetof(struct tcphdr, check);
		l4_port_off = ETH_HLEN + sizeof(*ip) + offsetof(struct tcphdr, dest);
	} else {
		return TC_ACT_SHOT;
	}
	old_ip = ip->daddr;
	if (bpf_skb_load_bytes(skb, l4_port_off, &old_port, sizeof(old_port)) < 0)
		return TC_ACT_SHOT;
	bpf_l4_csum_replace(skb, l4_csum_off, old_ip, new_ip, BPF_F_PSEUDO_HDR | sizeof(new_ip));
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ip, new_ip, sizeof(new_ip));
	bpf_skb_store_bytes(skb, IP_DST_OFF, &new_ip, sizeof(new_ip), 0);
	bpf_l4_csum_replace(skb, l4_csum_off, old_port, new_port, sizeof(new_port));
	bpf_skb_store_bytes(skb, l4_port_off, &new_port, sizeof(new_port), 0);
	skb->mark = 0x42;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
