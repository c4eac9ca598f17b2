/*
 * The guest front end's frame translation: a TAP's virtio_net_hdr to and
 * from netvsc's per-frame metadata (checksums, offloads, VLAN tags).
 *
 * The checksum arithmetic is written out here: netvsc is DPDK-free (a
 * guest has no EAL), so rte_raw_cksum is not at hand, and libc has none.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include <linux/if_ether.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>

#include "vm-private.h"

void netvsc_vm_tap_params(const struct netvsc_info *info, const char *name,
                          struct nettap_params *tp)
{
    memset(tp, 0, sizeof(*tp));
    tp->name = name;
    memcpy(tp->mac, info->mac, sizeof(tp->mac));
    tp->mtu = info->mtu;
    tp->csum = info->csum_offload;
    tp->tso = info->csum_offload && info->lso;
    if (tp->tso && info->lso_max && info->lso_max < NETVSC_VM_GSO_FRAME_MAX) {
        uint32_t l3 = info->lso_max > JUMBO_ETH_HLEN + JUMBO_VLAN_HLEN
                          ? info->lso_max - JUMBO_ETH_HLEN - JUMBO_VLAN_HLEN
                          : 0;
        if (l3 < jumbo_frame(info->mtu))
            tp->tso = false; /* an LSO limit below one frame is no LSO */
        else
            tp->gso_max_size = l3;
    }
    tp->up = true;
    tp->carrier = info->link_up;
    tp->netns_fd = -1;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t sum16(const uint8_t *p, uint32_t n)
{
    uint32_t s = 0;
    for (uint32_t i = 0; i + 1 < n; i += 2)
        s += be16(p + i);
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/*
 * A frame the root vouched for (NETVSC_F_CSUM) whose TCP/UDP checksum field
 * holds just the pseudo-header sum: the sending VM left the checksum to the
 * network (Linux's CHECKSUM_PARTIAL), and the root passed it on as
 * "verified", as vmswitch does. A TAP ignores VIRTIO_NET_HDR_F_DATA_VALID,
 * so the VM's kernel would check that field and drop the frame; handing it
 * over as a partial checksum (NEEDS_CSUM) is what it really is: accepted
 * locally, finished by the kernel if the VM forwards it. Frames whose
 * checksum is complete are left for the kernel to verify.
 *
 * The headers are copied out of the receive buffer first (the root can
 * write there); a wrong answer costs at most that frame.
 */
bool netvsc_vm_rx_partial_csum(const uint8_t *frame, uint32_t len, uint16_t *start,
                               uint16_t *offset)
{
    uint8_t h[JUMBO_ETH_HLEN + JUMBO_VLAN_HLEN + 60 + 20];
    uint32_t n = len < sizeof(h) ? len : (uint32_t)sizeof(h);
    memcpy(h, frame, n);
    uint32_t l3 = JUMBO_ETH_HLEN;
    if (n < l3)
        return false;
    uint16_t type = be16(h + 12);
    if (type == ETH_P_8021Q || type == ETH_P_8021AD) {
        l3 += JUMBO_VLAN_HLEN;
        if (n < l3)
            return false;
        type = be16(h + 16);
    }
    uint32_t l4, l4_len, pseudo;
    uint8_t proto;
    if (type == ETH_P_IP) {
        if (n < l3 + 20 || (h[l3] >> 4) != 4)
            return false;
        uint32_t ihl = (uint32_t)(h[l3] & 0xf) * 4;
        uint32_t tot = be16(h + l3 + 2);
        if (ihl < 20 || be16(h + l3 + 6) & 0x3fff || tot < ihl) /* fragments: no */
            return false;
        l4 = l3 + ihl;
        l4_len = tot - ihl;
        proto = h[l3 + 9];
        pseudo = sum16(h + l3 + 12, 8);
    } else if (type == ETH_P_IPV6) {
        if (n < l3 + 40 || (h[l3] >> 4) != 6)
            return false;
        l4 = l3 + 40;
        l4_len = be16(h + l3 + 4);
        proto = h[l3 + 6]; /* extension headers: not handled, left to the kernel */
        pseudo = sum16(h + l3 + 8, 32);
    } else {
        return false;
    }
    uint32_t off = proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 0;
    if (!off || n < l4 + off + 2 || (uint64_t)l4 + l4_len > len || l4_len < off + 2)
        return false;
    pseudo += proto + l4_len;
    uint16_t want = fold(pseudo), have = be16(h + l4 + off);
    /* One's complement: 0 and 0xffff are the same sum. */
    if (have != want && !((have == 0 || have == 0xffff) && (want == 0 || want == 0xffff)))
        return false;
    *start = (uint16_t)l4;
    *offset = (uint16_t)off;
    return true;
}

static bool frame_is_ipv6(const uint8_t *f, uint32_t len)
{
    uint32_t off = 2 * ETH_ALEN;
    if (len < off + 2)
        return false;
    uint16_t type = be16(f + off);
    if ((type == ETH_P_8021Q || type == ETH_P_8021AD) && len >= off + JUMBO_VLAN_HLEN + 2) {
        off += JUMBO_VLAN_HLEN;
        type = be16(f + off);
    }
    return type == ETH_P_IPV6;
}

/* Finish a partial checksum as the kernel asked: the field at
 * start + offset already holds the pseudo-header sum. */
static void sw_csum(uint8_t *f, uint32_t len, uint32_t start, uint32_t offset)
{
    uint64_t sum = 0;
    uint32_t i = start;
    for (; i + 1 < len; i += 2)
        sum += be16(f + i);
    if (i < len)
        sum += (uint32_t)f[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    if (c == 0)
        c = 0xffff; /* 0 means "no checksum" to UDP; the same value to TCP */
    f[start + offset] = (uint8_t)(c >> 8);
    f[start + offset + 1] = (uint8_t)c;
}

/* The root -> TAP direction of nic_rx_frame (vm-nic.c): the header and
 * the tag in front of and inside the frame. */
int netvsc_vm_rx_iov(const void *frame, uint32_t len, const struct netvsc_meta *meta,
                     struct virtio_net_hdr *vh, uint8_t tag[JUMBO_VLAN_HLEN],
                     struct iovec iov[4], enum netvsc_vm_rx_csum *csum)
{
    memset(vh, 0, sizeof(*vh));
    *csum = NETVSC_VM_RX_CSUM_NONE;
    bool tagged = meta && (meta->flags & NETVSC_F_VLAN) && len >= 2 * ETH_ALEN;
    if (meta && (meta->flags & NETVSC_F_CSUM)) {
        uint16_t start, offset;
        *csum = NETVSC_VM_RX_CSUM_VALID;
        if (netvsc_vm_rx_partial_csum(frame, len, &start, &offset)) {
            vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
            vh->csum_start = (uint16_t)(start + (tagged ? JUMBO_VLAN_HLEN : 0));
            vh->csum_offset = offset;
            *csum = NETVSC_VM_RX_CSUM_PARTIAL;
        } else {
            vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
        }
    }
    iov[0] = (struct iovec){vh, NETVSC_VM_VNET_HDR_LEN};
    if (tagged) {
        tag[0] = ETH_P_8021Q >> 8;
        tag[1] = ETH_P_8021Q & 0xff;
        tag[2] = (uint8_t)(meta->vlan_tci >> 8);
        tag[3] = (uint8_t)meta->vlan_tci;
        iov[1] = (struct iovec){(void *)frame, 2 * ETH_ALEN};
        iov[2] = (struct iovec){tag, JUMBO_VLAN_HLEN};
        iov[3] = (struct iovec){(uint8_t *)frame + 2 * ETH_ALEN, len - 2 * ETH_ALEN};
        return 4;
    }
    iov[1] = (struct iovec){(void *)frame, len};
    return 2;
}

/*
 * A GSO frame from the TAP, checked as the root will see it before it is
 * handed over as LSO: Ethernet (one tag at most), then an IP header of the
 * version gso_type names with TCP right behind it (IPv4: options allowed,
 * not a fragment; IPv6: no extension headers), the checksum
 * the kernel left partial being that TCP header's, the TCP header whole in
 * the frame, the IP length matching the frame, hdr_len inside it, and each
 * segment (mss plus the headers) within the NIC's MTU. *payload: the TCP
 * payload bytes. The frame is the VM kernel's, read into our memory.
 */
static bool gso_frame_ok(const struct netvsc_info *info, const struct virtio_net_hdr *vh,
                         const uint8_t *f, uint32_t len, bool v6, uint32_t *payload)
{
    uint32_t l3 = 2 * ETH_ALEN;
    if (vh->gso_size == 0 || vh->hdr_len > len || len < l3 + 2)
        return false;
    uint16_t type = be16(f + l3);
    if (type == ETH_P_8021Q || type == ETH_P_8021AD) {
        l3 += JUMBO_VLAN_HLEN;
        if (len < l3 + 2)
            return false;
        type = be16(f + l3);
    }
    l3 += 2;
    uint32_t l3_len, ip_len;
    if (!v6) {
        if (type != ETH_P_IP || len < l3 + 20 || (f[l3] >> 4) != 4)
            return false;
        l3_len = (uint32_t)(f[l3] & 0xf) * 4;
        if (l3_len < 20 || (be16(f + l3 + 6) & 0x3fff) || f[l3 + 9] != IPPROTO_TCP)
            return false;
        ip_len = be16(f + l3 + 2);
    } else {
        if (type != ETH_P_IPV6 || len < l3 + 40 || (f[l3] >> 4) != 6 || f[l3 + 6] != IPPROTO_TCP)
            return false;
        l3_len = 40;
        ip_len = 40u + be16(f + l3 + 4);
    }
    uint32_t l4 = l3 + l3_len;
    if (vh->csum_start != l4 || vh->csum_offset != 16 || len < l4 + 20)
        return false;
    uint32_t l4_len = (uint32_t)(f[l4 + 12] >> 4) * 4;
    if (l4_len < 20 || l4 + l4_len >= len || ip_len != len - l3)
        return false;
    if ((uint32_t)vh->gso_size + l3_len + l4_len > info->mtu)
        return false;
    *payload = len - l4 - l4_len;
    return true;
}

/*
 * A coalesced frame is checked as the VM's kernel will take it: a GSO
 * frame whose TCP checksum is partial. The root vouched for the checksum
 * of what it coalesced (NETVSC_F_CSUM), so the field is set to what a
 * partial checksum holds (the pseudo-header sum over the whole TCP
 * length): the kernel accepts the frame as checked, and computes each
 * segment's sum if it forwards it. The frame is in netvsc's copy; only the
 * headers are copied again, to be rewritten.
 */
int netvsc_vm_rx_rsc_iov(const void *frame, uint32_t len, const struct netvsc_meta *meta,
                         uint32_t mtu, struct virtio_net_hdr *vh,
                         uint8_t hdr[NETVSC_VM_RSC_HDR_MAX], uint8_t tag[JUMBO_VLAN_HLEN],
                         struct iovec iov[5])
{
    const uint8_t *f = frame;
    if (!(meta->flags & NETVSC_F_CSUM))
        return -EPROTO;
    uint32_t n = len < NETVSC_VM_RSC_HDR_MAX ? len : NETVSC_VM_RSC_HDR_MAX;
    memcpy(hdr, f, n);
    uint32_t l3 = 2 * ETH_ALEN;
    if (n < l3 + 2)
        return -EPROTO;
    uint16_t type = be16(hdr + l3);
    if (type == ETH_P_8021Q || type == ETH_P_8021AD) {
        l3 += JUMBO_VLAN_HLEN;
        if (n < l3 + 2)
            return -EPROTO;
        type = be16(hdr + l3);
    }
    l3 += 2;
    uint32_t l3_len, ip_len, pseudo;
    bool v6 = type == ETH_P_IPV6;
    if (type == ETH_P_IP) {
        if (n < l3 + 20 || (hdr[l3] >> 4) != 4)
            return -EPROTO;
        l3_len = (uint32_t)(hdr[l3] & 0xf) * 4;
        if (l3_len < 20 || n < l3 + l3_len || (be16(hdr + l3 + 6) & 0x3fff) ||
            hdr[l3 + 9] != IPPROTO_TCP)
            return -EPROTO;
        ip_len = be16(hdr + l3 + 2);
        pseudo = sum16(hdr + l3 + 12, 8);
    } else if (v6) {
        if (n < l3 + 40 || (hdr[l3] >> 4) != 6 || hdr[l3 + 6] != IPPROTO_TCP)
            return -EPROTO;
        l3_len = 40;
        ip_len = 40u + be16(hdr + l3 + 4);
        pseudo = sum16(hdr + l3 + 8, 32);
    } else {
        return -EPROTO;
    }
    uint32_t l4 = l3 + l3_len;
    if (n < l4 + 20 || ip_len != len - l3)
        return -EPROTO;
    uint32_t l4_hlen = (uint32_t)(hdr[l4 + 12] >> 4) * 4;
    uint32_t hlen = l4 + l4_hlen;
    if (l4_hlen < 20 || n < hlen || hlen >= len || l3_len + l4_hlen >= mtu)
        return -EPROTO;
    uint32_t tcp_len = len - l4;
    uint16_t ps = fold(pseudo + IPPROTO_TCP + tcp_len);
    hdr[l4 + 16] = (uint8_t)(ps >> 8);
    hdr[l4 + 17] = (uint8_t)ps;
    bool tagged = (meta->flags & NETVSC_F_VLAN) != 0;
    uint32_t shift = tagged ? JUMBO_VLAN_HLEN : 0;
    uint32_t mss = mtu - l3_len - l4_hlen;
    memset(vh, 0, sizeof(*vh));
    vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh->csum_start = (uint16_t)(l4 + shift);
    vh->csum_offset = 16;
    vh->hdr_len = (uint16_t)(hlen + shift);
    if (len - hlen > mss) {
        vh->gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
        vh->gso_size = (uint16_t)mss;
    }
    int cnt = 0;
    iov[cnt++] = (struct iovec){vh, NETVSC_VM_VNET_HDR_LEN};
    if (tagged) {
        tag[0] = ETH_P_8021Q >> 8;
        tag[1] = ETH_P_8021Q & 0xff;
        tag[2] = (uint8_t)(meta->vlan_tci >> 8);
        tag[3] = (uint8_t)meta->vlan_tci;
        iov[cnt++] = (struct iovec){hdr, 2 * ETH_ALEN};
        iov[cnt++] = (struct iovec){tag, JUMBO_VLAN_HLEN};
        iov[cnt++] = (struct iovec){hdr + 2 * ETH_ALEN, hlen - 2 * ETH_ALEN};
    } else {
        iov[cnt++] = (struct iovec){hdr, hlen};
    }
    iov[cnt++] = (struct iovec){(uint8_t *)f + hlen, len - hlen};
    return cnt;
}

enum netvsc_vm_tx_verdict netvsc_vm_tx_meta(const struct netvsc_info *info,
                                            const struct virtio_net_hdr *vh, uint8_t *f,
                                            uint32_t len, struct netvsc_meta *meta)
{
    memset(meta, 0, sizeof(*meta));
    bool partial = vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
    uint32_t start = vh->csum_start, offset = vh->csum_offset;
    if (partial && (start < JUMBO_ETH_HLEN || (uint64_t)start + offset + 2 > len))
        return NETVSC_VM_TX_BAD_OFFLOAD;
    uint8_t gso = vh->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        if ((gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6) || !info->lso)
            return NETVSC_VM_TX_GSO_TYPE;
        bool v6 = gso == VIRTIO_NET_HDR_GSO_TCPV6;
        uint32_t payload;
        if (!partial || !gso_frame_ok(info, vh, f, len, v6, &payload))
            return NETVSC_VM_TX_BAD_OFFLOAD;
        meta->flags = v6 ? NETVSC_F_IPV6 : 0;
        meta->l4_offset = (uint16_t)start;
        meta->l4_proto = IPPROTO_TCP;
        if (payload <= vh->gso_size) {
            /* One segment: a checksum to finish, not a segmentation (the
             * root may ask for two segments or more). */
            meta->flags |= NETVSC_F_CSUM;
            return NETVSC_VM_TX_OK;
        }
        meta->flags |= NETVSC_F_LSO;
        meta->mss = vh->gso_size;
        return NETVSC_VM_TX_OK;
    }
    if (!partial)
        return NETVSC_VM_TX_OK;
    uint8_t proto = offset == 16 ? IPPROTO_TCP : offset == 6 ? IPPROTO_UDP : 0;
    if (proto && info->csum_offload) {
        meta->flags = NETVSC_F_CSUM;
        if (frame_is_ipv6(f, len))
            meta->flags |= NETVSC_F_IPV6;
        meta->l4_offset = (uint16_t)start;
        meta->l4_proto = proto;
        return NETVSC_VM_TX_OK;
    }
    sw_csum(f, len, start, offset);
    return NETVSC_VM_TX_SW_CSUM;
}
