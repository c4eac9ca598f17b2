/*
 * Host vNIC ports: a TAP device in the root namespace that puts the host's
 * own stack on a switch (internal switches; external switches with the
 * management OS allowed). Control thread.
 */
#ifndef VSW_HOST_H
#define VSW_HOST_H

#include <stdbool.h>
#include <stdint.h>

struct rte_mempool;
struct vsw_port;

struct vsw_host_params {
    const char *ifname;    /* the TAP's name, 1..15 characters */
    const char *port_name; /* the switch port's name; NULL = ifname */
    uint8_t mac[6];        /* all zero: a random locally administered one */
    uint32_t mtu;          /* jumbo_mtu_valid() (68..9000) */
    struct rte_mempool *pool;
};

/* Create the TAP (up, carrier on, MAC and MTU set); -EEXIST if an interface
 * of that name exists. Destroy with vsw_port_destroy(). */
int vsw_host_port_create(const struct vsw_host_params *p, struct vsw_port **out);
bool vsw_is_host_port(const struct vsw_port *port);
const char *vsw_host_port_ifname(const struct vsw_port *port);
int vsw_host_port_set_mtu(struct vsw_port *port, uint32_t mtu);
/* Frames the kernel handed over with offload metadata we cannot honour. */
uint64_t vsw_host_port_bad_headers(const struct vsw_port *port);

#endif
