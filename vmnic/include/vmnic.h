/*
 * vmnic: the synthetic VM NIC's wire protocol, shared by both ends. netvsp
 * (the root's VSP) and netvsc (the guest's VSC) include it; neither sees the
 * other's headers. The wire formats are nvsp-proto.h and rndis-proto.h; this
 * header adds what both ends must compute the same way: the NVSP version
 * table, and the validated reading of an RNDIS PACKET_MSG's layout and
 * per-packet info (PPI).
 *
 * libc only: no DPDK, no hv-core. Every function is pure (no state, no
 * allocation), so any thread may call it, and it reads nothing but the
 * bytes it is given: callers copy what the peer wrote in shared memory
 * before they pass it here (the peer is untrusted on both ends).
 */
#ifndef VMNIC_H
#define VMNIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvsp-proto.h"
#include "rndis-proto.h"

/* One NVSP version both ends speak. */
struct vmnic_nvsp_version {
    uint32_t version;  /* NVSP_PROTOCOL_VERSION_* */
    const char *name;  /* as operators write it: "1", "2", ..., "6.1" */
    uint32_t msg_size; /* bytes of each NVSP message at this version */
};

/* The versions both ends speak, newest first (the order a guest offers
 * them in and a host prefers them in); *count gets how many. */
const struct vmnic_nvsp_version *vmnic_nvsp_versions(size_t *count);

/* The table's entry for exactly this version, or NULL. */
const struct vmnic_nvsp_version *vmnic_nvsp_version_find(uint32_t version);

/* The version's name ("6.1"), or NULL if it is not in the table. */
const char *vmnic_nvsp_version_name(uint32_t version);

/* The NVSP message size for a peer that speaks versions up to `version`
 * (which need not be in the table, e.g. the upper end of a guest's INIT
 * range): that of the newest table version not above it, or the oldest's
 * when it is below them all. */
uint32_t vmnic_nvsp_msg_size(uint32_t version);

/*
 * An RNDIS PACKET_MSG, its fixed part already copied out of shared memory
 * into pm, and msg_len the message's length as the caller measured it (the
 * bytes of this message it holds; never more than there are).
 *
 * vmnic_rndis_data_ok: the frame is data_len > 0 bytes at 8 + data_offset,
 * after the fixed part (data_offset >= RNDIS_PACKET_OFFSET_MIN), inside
 * msg_len.
 *
 * vmnic_rndis_ppi_area_ok: there is no PPI block (ppi_len 0; ppi_offset is
 * then ignored), or it is ppi_len bytes at 8 + ppi_offset, after the fixed
 * part, at an offset that is a multiple of RNDIS_PPI_ALIGN, inside msg_len.
 *
 * Offsets near UINT32_MAX do not wrap. Neither checks the OOB fields: a
 * host's netvsp refuses messages that use them, a guest ignores them.
 */
bool vmnic_rndis_data_ok(const struct rndis_packet_msg *pm, uint32_t msg_len);
bool vmnic_rndis_ppi_area_ok(const struct rndis_packet_msg *pm, uint32_t msg_len);

/* PPIs vmnic_ppi_parse reads (bits of struct vmnic_ppi's present). */
#define VMNIC_PPI_CSUM (1u << 0) /* RNDIS_PPI_CSUM_INFO */
#define VMNIC_PPI_LSO (1u << 1)  /* RNDIS_PPI_LSO */
#define VMNIC_PPI_VLAN (1u << 2) /* RNDIS_PPI_VLAN */
#define VMNIC_PPI_PKTINFO_ID (1u << 3) /* RNDIS_PPI_PKTINFO_ID */

/* What a PACKET_MSG's PPIs say; a value is meaningful only when its bit is
 * in present. */
struct vmnic_ppi {
    uint32_t present;
    uint32_t csum; /* RNDIS_TXCSUM_* to the host, RNDIS_RXCSUM_* to the guest */
    uint32_t lso;  /* RNDIS_LSO_* */
    uint32_t vlan; /* RNDIS_VLAN_ID / RNDIS_VLAN_PRIO */
    uint32_t pktinfo_id; /* RNDIS_PKTINFO_* flags, to the guest */
};

/*
 * Walk a PPI block of len bytes (a copy the caller owns; any alignment)
 * into *out. Every record must lie whole inside the block, one right after
 * another up to its end, each with:
 *   - size >= sizeof(struct rndis_ppi) and a multiple of RNDIS_PPI_ALIGN;
 *   - ppi_offset (its data, from the record's start) at or after the
 *     record's header, with at least RNDIS_PPI_DATA_MIN bytes of data
 *     before the record's end.
 * Records of types not read here are checked the same way and skipped;
 * when a type comes twice the last one counts. len 0 is an empty block.
 *
 * Returns 0, or -EBADMSG for a malformed block (*out is then cleared).
 */
int vmnic_ppi_parse(const void *block, uint32_t len, struct vmnic_ppi *out);

#endif
