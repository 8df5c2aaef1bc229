/* Ring buffer producer: for every frame, a record {len, ifindex, first 16 bytes} with
 * bpf_ringbuf_reserve/submit; frames shorter than 16 bytes are discarded after reserving;
 * every third frame also goes through bpf_ringbuf_output. */
#include "common.h"

struct event {
	__u32 len;
	__u32 ifindex;
	__u8 head[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

__u32 seen = 0;

SEC("xdp")
int xdp_ringbuf(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return XDP_DROP;
	if (data + 16 > data_end) {
		bpf_ringbuf_discard(e, 0);
		return XDP_PASS;
	}
	e->len = data_end - data;
	e->ifindex = ctx->ingress_ifindex;
	__builtin_memcpy(e->head, data, 16);
	if (++seen % 3 == 0)
		bpf_ringbuf_output(&events, e, sizeof(*e), 0);
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
