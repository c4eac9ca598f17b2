/*
 * libFuzzer harness for vmnic's PACKET_MSG layout checks and PPI walker
 * (vmnic.h), the parser both NIC ends run on what the other wrote.
 *
 * Input: one RNDIS PACKET_MSG as a peer would put it in a buffer. The
 * harness does what netvsp and netvsc do with it: copy the fixed part out,
 * take msg_len as the smaller of hdr.len and the bytes there are, check the
 * frame's and the PPI block's place, walk the PPI block in place (the input
 * is exactly as long as the buffer, so a read past it is an ASan report),
 * and read the frame. The whole input is also walked as a bare PPI block,
 * and its first u32 is looked up in the NVSP version table.
 *
 * Checked besides sanitizers: what the layout checks accept lies inside the
 * message; a block the walker accepts is made of records it could step
 * through, and one it refuses leaves nothing behind; walking the same bytes
 * twice gives the same answer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmnic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_vmnic_ppi: invariant failed at line %d: %s\n", __LINE__,       \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static volatile uint8_t sink;

static void walk(const uint8_t *block, uint32_t len)
{
    struct vmnic_ppi a, b;
    int rc = vmnic_ppi_parse(block, len, &a);
    CHECK(rc == 0 || rc == -EBADMSG);
    CHECK((a.present & ~(VMNIC_PPI_CSUM | VMNIC_PPI_LSO | VMNIC_PPI_VLAN | VMNIC_PPI_PKTINFO_ID)) ==
          0);
    if (rc < 0) {
        CHECK(a.present == 0 && a.csum == 0 && a.lso == 0 && a.vlan == 0 && a.pktinfo_id == 0);
    } else {
        /* Accepted: the records tile the block exactly. */
        uint32_t p = 0;
        while (p < len) {
            struct rndis_ppi r;
            CHECK(len - p >= sizeof(r));
            memcpy(&r, block + p, sizeof(r));
            CHECK(r.size >= sizeof(r) + RNDIS_PPI_DATA_MIN && r.size <= len - p);
            CHECK(r.size % RNDIS_PPI_ALIGN == 0);
            CHECK(r.ppi_offset >= sizeof(r) && r.size - r.ppi_offset >= RNDIS_PPI_DATA_MIN);
            p += r.size;
        }
        CHECK(p == len);
    }
    CHECK(vmnic_ppi_parse(block, len, &b) == rc);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > UINT32_MAX)
        return 0;
    walk(data, (uint32_t)size);

    if (size >= 4) {
        uint32_t v;
        memcpy(&v, data, 4);
        const char *name = vmnic_nvsp_version_name(v);
        CHECK(!name || vmnic_nvsp_version_find(v)->version == v);
        uint32_t ms = vmnic_nvsp_msg_size(v);
        CHECK(ms == NVSP_MSG_SIZE_LEGACY || ms == NVSP_MSG_SIZE_61);
    }

    struct rndis_packet_msg pm;
    if (size < sizeof(pm))
        return 0;
    memcpy(&pm, data, sizeof(pm));
    uint32_t msg_len = pm.hdr.len < size ? pm.hdr.len : (uint32_t)size;
    if (vmnic_rndis_data_ok(&pm, msg_len)) {
        CHECK(pm.data_len > 0 && pm.data_offset >= RNDIS_PACKET_OFFSET_MIN);
        CHECK((uint64_t)RNDIS_HEADER_SIZE + pm.data_offset + pm.data_len <= msg_len);
        /* Read the frame where it says it is: ASan sees a read past it. */
        sink ^= data[RNDIS_HEADER_SIZE + pm.data_offset];
        sink ^= data[RNDIS_HEADER_SIZE + pm.data_offset + pm.data_len - 1];
    }
    if (vmnic_rndis_ppi_area_ok(&pm, msg_len) && pm.ppi_len) {
        CHECK(pm.ppi_offset >= RNDIS_PACKET_OFFSET_MIN && pm.ppi_offset % RNDIS_PPI_ALIGN == 0);
        CHECK((uint64_t)RNDIS_HEADER_SIZE + pm.ppi_offset + pm.ppi_len <= msg_len);
        walk(data + RNDIS_HEADER_SIZE + pm.ppi_offset, pm.ppi_len);
    }
    return 0;
}
