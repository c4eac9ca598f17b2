/*
 * The layout of an RNDIS PACKET_MSG and its per-packet info, checked the
 * same way on both ends.
 *
 * What real peers send and require, and so what is refused here:
 *   - the RNDIS spec asks every sender for 4-byte aligned PPI offsets and
 *     sizes; Linux hv_netvsc, FreeBSD hn(4), DPDK net_netvsc and our own
 *     netvsc and netvsp put the PPI block right after the fixed part (at
 *     offset 36) and write records of 16 bytes (a 12-byte header and one
 *     u32), back to back, nothing after the last;
 *   - FreeBSD hn(4) and DPDK refuse a PPI block offset or record size that
 *     is not a multiple of 4, and a checksum, VLAN or hash record with too
 *     few data bytes; Linux hv_netvsc does not take a record whose data
 *     offset is not inside it; OpenVMM's netvsp refuses records of size 0,
 *     records past the block and data shorter than the type it reads.
 * The checks here are the union of those, so nothing any of them refuses
 * gets through, and nothing a real peer sends is refused. Every record must
 * carry at least 4 data bytes, whatever its type: each NDIS per-packet info
 * is a 32-bit value or larger, so a shorter one is malformed whether or not
 * its type is read here.
 */
#include <errno.h>
#include <string.h>

#include "vmnic.h"

bool vmnic_rndis_data_ok(const struct rndis_packet_msg *pm, uint32_t msg_len)
{
    return pm->data_len != 0 && pm->data_offset >= RNDIS_PACKET_OFFSET_MIN &&
           (uint64_t)RNDIS_HEADER_SIZE + pm->data_offset + pm->data_len <= msg_len;
}

bool vmnic_rndis_ppi_area_ok(const struct rndis_packet_msg *pm, uint32_t msg_len)
{
    if (pm->ppi_len == 0)
        return true;
    return pm->ppi_offset >= RNDIS_PACKET_OFFSET_MIN && pm->ppi_offset % RNDIS_PPI_ALIGN == 0 &&
           (uint64_t)RNDIS_HEADER_SIZE + pm->ppi_offset + pm->ppi_len <= msg_len;
}

int vmnic_ppi_parse(const void *block, uint32_t len, struct vmnic_ppi *out)
{
    const uint8_t *b = block;
    memset(out, 0, sizeof(*out));
    for (uint32_t p = 0; p < len;) {
        struct rndis_ppi r;
        uint32_t left = len - p;
        if (left < sizeof(r))
            goto bad;
        memcpy(&r, b + p, sizeof(r));
        if (r.size < sizeof(r) || r.size > left || r.size % RNDIS_PPI_ALIGN != 0 ||
            r.ppi_offset < sizeof(r) || r.ppi_offset > r.size ||
            r.size - r.ppi_offset < RNDIS_PPI_DATA_MIN)
            goto bad;
        uint32_t *value = NULL, bit = 0;
        switch (r.type) {
        case RNDIS_PPI_CSUM_INFO:
            value = &out->csum;
            bit = VMNIC_PPI_CSUM;
            break;
        case RNDIS_PPI_LSO:
            value = &out->lso;
            bit = VMNIC_PPI_LSO;
            break;
        case RNDIS_PPI_VLAN:
            value = &out->vlan;
            bit = VMNIC_PPI_VLAN;
            break;
        case RNDIS_PPI_PKTINFO_ID:
            value = &out->pktinfo_id;
            bit = VMNIC_PPI_PKTINFO_ID;
            break;
        default:
            break;
        }
        if (value) {
            memcpy(value, b + p + r.ppi_offset, sizeof(*value));
            out->present |= bit;
        }
        p += r.size;
    }
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return -EBADMSG;
}
