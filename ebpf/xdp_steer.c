// SPDX-License-Identifier: MIT OR GPL-2.0-only
//
// xdp_steer: the XDP half of xdpget's data path.
//
// Steers the TCP segments of one reserved local port range, addressed to our IPv4
// address, into the AF_XDP socket bound to the receiving queue (an XSKMAP entry keyed
// by rx_queue_index). A segment of the range that cannot be redirected (no socket on its
// queue, a full ring) is dropped, never passed: the kernel has no socket for those ports
// and would answer with a RST (RFC 9293 §3.10.7.1), so xdpget needs no firewall rule in
// AF_XDP mode. (Except during a hand-over from the raw driver, which has such a rule:
// see `pass_without_socket`.) Every other frame goes on to the kernel (XDP_PASS), unchanged.
//
// Follows: IEEE 802.3 (Ethernet II framing), RFC 791 (IPv4 header, fragmentation),
// RFC 8200 §3 (IPv6 header), RFC 9293 §3.1 (TCP header).
//
// IPv6: a segment to our IPv6 address is steered when TCP follows the fixed header
// directly (what servers send); a first fragment whose Fragment header follows the fixed
// header directly is dropped and counted like an IPv4 one (RFC 8200 §4.5); anything else
// with extension headers, and all of ICMPv6 (neighbour discovery, Packet Too Big), goes
// to the kernel. Map definitions are libbpf BTF-style (SEC(".maps")).
//
// The loader (src/driver/afxdp/loader.rs) fills `steer_config` and the XSKMAP, and reads
// `steer_counters` for `--stats`. Keep `struct steer_config` and `enum steer_counter` in
// step with the Rust side.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Sockets per rx queue; more queues than this are never steered (they pass).
#define XSKS_MAX_QUEUES 64

// RFC 791 §3.1: flags (3 bits) and fragment offset (13 bits) share one 16-bit field.
#define IPV4_MORE_FRAGMENTS 0x2000
#define IPV4_FRAGMENT_OFFSET 0x1fff

// RFC 8200 §4.5: the Fragment header (next header value 44), 8 bytes. Its 16-bit field
// holds the fragment offset (13 bits), 2 reserved bits and the M (more fragments) flag.
#define IPV6_NEXTHDR_FRAGMENT 44
#define IPV6_FRAGMENT_OFFSET 0xfff8

struct ipv6_fragment_header {
    __u8 nexthdr;
    __u8 reserved;
    __be16 frag_off;       // offset << 3 | M, network byte order
    __be32 identification;
};

struct steer_config {
    __u32 ipv4_addr;     // our address, network byte order; 0 = steer nothing
    __u16 port_min;      // first port of the reserved range, host byte order
    __u16 port_max;      // last port of the range, inclusive
    __u8 ipv6_addr[16];  // our IPv6 address, network byte order; all zero = none
    __u8 pass_without_socket; // 1: a segment of the range with no socket on its queue
                              // goes to the kernel (the hand-over from the raw driver,
                              // whose packet socket and nftables guard take it there)
    __u8 reserved[3];
};

enum steer_counter {
    COUNTER_SEEN = 0,      // every frame this program ran on
    COUNTER_STEERED = 1,   // redirected into an AF_XDP socket
    COUNTER_PASSED = 2,    // handed on to the kernel
    COUNTER_NO_SOCKET = 3, // in range, but no socket on this rx queue (dropped; passed
                           // during a hand-over, and then counted as passed too)
    COUNTER_FRAGMENT = 4,  // first fragment (IPv4 or IPv6) of a datagram to the range (dropped)
    COUNTER_COUNT = 5,
};

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, XSKS_MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct steer_config);
} steer_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, COUNTER_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} steer_counters SEC(".maps");

static __always_inline void count(__u32 counter)
{
    __u64 *value = bpf_map_lookup_elem(&steer_counters, &counter);
    if (value)
        *value += 1; // per-CPU slot: no atomic needed
}

static __always_inline int pass(void)
{
    count(COUNTER_PASSED);
    return XDP_PASS;
}

enum verdict {
    NOT_OURS = 0,       // pass to the kernel
    OURS = 1,           // redirect to our socket
    OUR_FRAGMENT = 2,   // a first fragment to our range: drop
};

// Whether the config names an IPv6 address (any nonzero byte).
static __always_inline int has_ipv6(const struct steer_config *config)
{
    __u32 any = 0;
    for (int i = 0; i < 16; i++)
        any |= config->ipv6_addr[i];
    return any != 0;
}

// RFC 8200 §3: TCP right after the fixed header, to our address and port range, is OURS.
// RFC 8200 §4.5: a Fragment header right after the fixed header, with offset 0 and TCP
// behind it, to our address and port range is OUR_FRAGMENT, whether M is set or not (an
// atomic fragment, RFC 6946, is dropped too: the engine parses no extension headers).
// Anything else behind an extension header goes to the kernel.
static __always_inline enum verdict classify_ipv6(void *l3, void *data_end,
                                                  const struct steer_config *config)
{
    struct ipv6hdr *ip6 = l3;
    if ((void *)(ip6 + 1) > data_end)
        return NOT_OURS;
    if (ip6->version != 6 || !has_ipv6(config))
        return NOT_OURS;
    if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPV6_NEXTHDR_FRAGMENT)
        return NOT_OURS;
    for (int i = 0; i < 16; i++)
        if (ip6->daddr.in6_u.u6_addr8[i] != config->ipv6_addr[i])
            return NOT_OURS;

    void *l4 = ip6 + 1;
    enum verdict ours = OURS;
    if (ip6->nexthdr == IPV6_NEXTHDR_FRAGMENT) {
        struct ipv6_fragment_header *frag = l4;
        if ((void *)(frag + 1) > data_end)
            return NOT_OURS;
        if (frag->nexthdr != IPPROTO_TCP)
            return NOT_OURS;
        // As for IPv4: a later fragment carries no TCP header, so it cannot be told apart
        // from the kernel's own traffic to this address; it goes to the kernel, which holds
        // it until reassembly times out, because the first fragment never reaches it.
        if (frag->frag_off & bpf_htons(IPV6_FRAGMENT_OFFSET))
            return NOT_OURS;
        l4 = frag + 1;
        ours = OUR_FRAGMENT;
    }

    struct tcphdr *tcp = l4;
    if ((void *)(tcp + 1) > data_end)
        return NOT_OURS;
    __u16 dst_port = bpf_ntohs(tcp->dest);
    if (dst_port < config->port_min || dst_port > config->port_max)
        return NOT_OURS;
    return ours;
}

// Classifies a frame: an unfragmented IPv4 TCP segment to our address and a port of the
// reserved range is OURS; a first fragment (offset 0, more to come) of such a segment is
// OUR_FRAGMENT; IPv6 as classify_ipv6 says. Every header is bounds-checked before it is read.
static __always_inline enum verdict classify(struct xdp_md *ctx, const struct steer_config *config)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return NOT_OURS;
    if (eth->h_proto == bpf_htons(ETH_P_IPV6))
        return classify_ipv6(eth + 1, data_end, config);
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return NOT_OURS;

    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end)
        return NOT_OURS;
    if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_TCP)
        return NOT_OURS;
    if (ip->daddr != config->ipv4_addr)
        return NOT_OURS;
    // RFC 791 §3.2: a later fragment (non-zero offset) carries no TCP header, so it cannot
    // be told apart; it goes to the kernel, which holds it until reassembly times out,
    // because the first fragment, which names the port, never reaches it (below).
    if (ip->frag_off & bpf_htons(IPV4_FRAGMENT_OFFSET))
        return NOT_OURS;

    // RFC 791 §3.1: IHL counts 32-bit words, options included.
    struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
    if ((void *)(tcp + 1) > data_end)
        return NOT_OURS;
    __u16 dst_port = bpf_ntohs(tcp->dest);
    if (dst_port < config->port_min || dst_port > config->port_max)
        return NOT_OURS;
    // Our engine sends DF and cannot reassemble; reassembled by the kernel, the datagram
    // would draw a RST from it. The peer retransmits, or the connection times out.
    if (ip->frag_off & bpf_htons(IPV4_MORE_FRAGMENTS))
        return OUR_FRAGMENT;
    return OURS;
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
    count(COUNTER_SEEN);

    __u32 zero = 0;
    const struct steer_config *config = bpf_map_lookup_elem(&steer_config, &zero);
    if (!config || (config->ipv4_addr == 0 && !has_ipv6(config)))
        return pass();
    switch (classify(ctx, config)) {
    case NOT_OURS:
        return pass();
    case OUR_FRAGMENT:
        count(COUNTER_FRAGMENT);
        return XDP_DROP;
    case OURS:
        break;
    }

    // The lower bits of flags are the action when the queue has no socket: XDP_DROP, so
    // the kernel's TCP never sees a segment of our range (it would answer with a RST).
    // During a hand-over from the raw driver (pass_without_socket) it is XDP_PASS instead:
    // until the socket is in the XSKMAP the raw driver's packet socket still takes the
    // segment, and its nftables guard keeps the kernel's TCP from answering it.
    __u64 no_socket = config->pass_without_socket ? XDP_PASS : XDP_DROP;
    long action = bpf_redirect_map(&xsks, ctx->rx_queue_index, no_socket);
    if (action == XDP_REDIRECT) {
        count(COUNTER_STEERED);
        return XDP_REDIRECT;
    }
    count(COUNTER_NO_SOCKET);
    if (action == XDP_PASS)
        count(COUNTER_PASSED);
    return action == XDP_PASS ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
