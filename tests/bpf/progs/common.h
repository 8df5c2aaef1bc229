/* Shared definitions for the netstack ELF-loader test programs (no kernel headers needed
 * beyond linux/bpf.h and libbpf's bpf_helpers.h). */
#ifndef NETSTACK_TEST_COMMON_H
#define NETSTACK_TEST_COMMON_H
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#endif
