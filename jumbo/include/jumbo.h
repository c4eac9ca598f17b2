/*
 * Frame-size arithmetic: what an MTU means on each path, in one place.
 *
 * The MTU is the L3 MTU (68..9000 here). On the wire (and in an mbuf, no
 * FCS) a frame is the MTU plus the 14-byte Ethernet header, plus 4 when it
 * carries an 802.1Q tag in the frame. NVSP's NDIS_CONFIG.mtu and RNDIS's
 * OID_GEN_MAXIMUM_FRAME_SIZE speak of the untagged frame and of the MTU
 * respectively (reference §4.8, §6.1). Pure C, no DPDK: the guest side
 * uses it too.
 */
#ifndef HVNET_JUMBO_H
#define HVNET_JUMBO_H

#include <stdbool.h>
#include <stdint.h>

#define JUMBO_MTU_MIN 68u
#define JUMBO_MTU_MAX 9000u
#define JUMBO_MTU_DEFAULT 1500u
#define JUMBO_ETH_HLEN 14u
#define JUMBO_VLAN_HLEN 4u
/* What a frame with one 802.1Q tag adds to its MTU. */
#define JUMBO_TAGGED_OVERHEAD (JUMBO_ETH_HLEN + JUMBO_VLAN_HLEN)

/* The largest frame at an MTU of JUMBO_MTU_MAX, tag included. */
#define JUMBO_FRAME_MAX (JUMBO_MTU_MAX + JUMBO_TAGGED_OVERHEAD)

static inline bool jumbo_mtu_valid(uint32_t mtu)
{
    return mtu >= JUMBO_MTU_MIN && mtu <= JUMBO_MTU_MAX;
}

/* Untagged frame at this MTU (NDIS_CONFIG.mtu, a port's frame limit). */
static inline uint32_t jumbo_frame(uint32_t mtu)
{
    return mtu + JUMBO_ETH_HLEN;
}

/* The same frame with an 802.1Q tag in it. */
static inline uint32_t jumbo_frame_tagged(uint32_t mtu)
{
    return mtu + JUMBO_TAGGED_OVERHEAD;
}

/* The MTU an untagged frame size stands for (0 if it cannot be one). */
static inline uint32_t jumbo_mtu_of_frame(uint32_t frame)
{
    return frame > JUMBO_ETH_HLEN ? frame - JUMBO_ETH_HLEN : 0;
}

/* May a frame of len bytes enter a port whose limit is max_frame? A frame
 * that carries its tag in-band may be 4 bytes longer. */
static inline bool jumbo_frame_fits(uint32_t len, uint32_t max_frame, bool tagged)
{
    return len <= max_frame + (tagged ? JUMBO_VLAN_HLEN : 0u);
}

/* How many buffers of room bytes a frame of len bytes needs (at least 1). */
static inline uint32_t jumbo_segments(uint32_t len, uint32_t room)
{
    if (room == 0)
        return 0;
    return len <= room ? 1u : (len + room - 1) / room;
}

/* Bytes of one receive-buffer section for frames up to frame bytes: room
 * for the RNDIS header and per-packet info before, a tail after (a Windows
 * netvsc bug the reference §6.2 describes), rounded to align (a power of
 * two). */
static inline uint32_t jumbo_recv_section(uint32_t frame, uint32_t head_room, uint32_t tail_room,
                                          uint32_t align)
{
    uint32_t s = head_room + frame + tail_room;
    return (s + align - 1) & ~(align - 1);
}

#endif
