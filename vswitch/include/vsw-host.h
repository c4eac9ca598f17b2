/*
 * Host vNIC ports: a TAP device in the root namespace that puts the host's
 * own stack on a switch (internal switches; external switches with the
 * management OS allowed). Control thread.
 */
#ifndef VSW_HOST_H
#define VSW_HOST_H

#include <stdbool.h>
#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct virtio_net_hdr;
struct vsw_port;

struct vsw_host_params {
    const char *ifname;    /* the TAP's name, 1..15 characters */
    const char *port_name; /* the switch port's name; NULL = ifname */
    uint8_t mac[6];        /* all zero: a random locally administered one */
    uint32_t mtu;          /* jumbo_mtu_valid() (68..9000) */
    struct rte_mempool *pool;
};

/* Create the TAP (up, carrier on, MAC and MTU set, checksum and TCP
 * segmentation offload on: the port takes and sends large TCP segments,
 * VSW_TX_CSUM | VSW_TX_TSO); -EEXIST if an interface
 * of that name exists. Destroy with vsw_port_destroy(). */
int vsw_host_port_create(const struct vsw_host_params *p, struct vsw_port **out);
bool vsw_is_host_port(const struct vsw_port *port);
const char *vsw_host_port_ifname(const struct vsw_port *port);
int vsw_host_port_set_mtu(struct vsw_port *port, uint32_t mtu);
/* Frames the kernel handed over with offload metadata we cannot honour. */
uint64_t vsw_host_port_bad_headers(const struct vsw_port *port);

/*
 * What a host vNIC makes of frame m (pkt_len bytes, read whole) and the
 * virtio-net header the kernel gave with it; the port's receive path,
 * callable on its own for tests. GSO_NONE: a frame of at most frame_max
 * bytes, with a partial checksum (NEEDS_CSUM, csum_offset 16 or 6) a
 * checksum request (vsw_frame_csum_request at csum_start). GSO_TCPV4 or
 * GSO_TCPV6 (ECN allowed): a large TCP segment, the TCP checksum partial
 * (NEEDS_CSUM, csum_offset 16, csum_start at the TCP header), hdr_len
 * inside the frame, and the frame one of contract B for segments of
 * gso_size bytes within mtu (vsw_frame_tso_request). 0, or -EMSGSIZE
 * (a plain frame longer than frame_max) or -EINVAL (any other header it
 * cannot honour), m's offload fields unchanged.
 */
int vsw_host_vnet_to_mbuf(const struct virtio_net_hdr *vh, struct rte_mbuf *m,
                          uint32_t frame_max, uint32_t mtu);

#endif
