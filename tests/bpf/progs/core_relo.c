/* CO-RE: a preserve_access_index struct makes clang emit a field-offset relocation in .BTF.ext
 * (insn "r2 = 8" for ->ttl).  libbpf would rewrite it against the kernel's BTF; the loader must
 * refuse it rather than run the compile-time offset. */
#include "common.h"
struct iphdr___local {
	__u8 ihl:4, version:4;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
} __attribute__((preserve_access_index));

SEC("xdp")
int xdp_core(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr___local *ip = data + 14;

	if (data + 34 > data_end)
		return XDP_PASS;
	return ip->ttl == 1 ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
