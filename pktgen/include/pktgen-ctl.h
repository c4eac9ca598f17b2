/* vswitch-pktgen's in-band control protocol: a controller drives agents
 * (a pktgen in a VM, reachable only through its NIC) with UDP/IPv4 frames
 * addressed by MAC.
 *
 * Frame: Ethernet (controller <-> agent MACs), IPv4, UDP to or from port
 * PKTGEN_CTL_UDP_PORT, then PKTGEN_CTL_PAYLOAD bytes, fixed little-endian
 * layout (pktgen-ctl.c says where each field is):
 *   u32 magic, u8 version, u8 type, u16 status, u64 nonce, u32 trial, then
 *   the body of the type (zeros after it).
 * `nonce` is the controller's (one per controller run) and `trial` counts its
 * trials: an answer that does not carry both is stale and ignored.
 *
 * Messages:
 *   START   controller -> agent: run one trial (gen, sink or reflect);
 *   ACK     agent -> controller: START accepted (status 0) or refused (an
 *           errno); or ESRCH to a STOP for a trial the agent does not have;
 *   STOP    controller -> agent: end the trial if it still runs, then REPORT;
 *   REPORT  agent -> controller: the trial's counters (a generator's also
 *           unasked, when it is done).
 *
 * Control frames are untrusted: pktgen_ctl_parse_buf checks every field and
 * accepts a message only whole. Not thread-safe; no state.
 */
#ifndef PKTGEN_CTL_H
#define PKTGEN_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pktgen.h"

struct rte_mbuf;

#define PKTGEN_CTL_MAGIC 0x74437648u /* "HvCt" little endian */
#define PKTGEN_CTL_VERSION 1u
#define PKTGEN_CTL_UDP_PORT 48761u
#define PKTGEN_CTL_PAYLOAD 192u
#define PKTGEN_CTL_FRAME_LEN (PKTGEN_HDR_LEN + PKTGEN_CTL_PAYLOAD)
/* Limits of a START (an agent refuses more). */
#define PKTGEN_CTL_MAX_PPS 1e9
#define PKTGEN_CTL_MAX_DURATION_MS (3600u * 1000u)
#define PKTGEN_CTL_MAX_COUNT (1ull << 40)
#define PKTGEN_CTL_MAX_DELAY_MS 10000u

enum pktgen_ctl_type {
    PKTGEN_CTL_START = 1,
    PKTGEN_CTL_ACK = 2,
    PKTGEN_CTL_STOP = 3,
    PKTGEN_CTL_REPORT = 4,
};

enum pktgen_ctl_role {
    PKTGEN_CTL_ROLE_GEN = 1,
    PKTGEN_CTL_ROLE_SINK = 2,
    PKTGEN_CTL_ROLE_REFLECT = 3,
};

/* START flags. */
#define PKTGEN_CTL_F_IMIX 0x1u
#define PKTGEN_CTL_F_UNPACED 0x2u
#define PKTGEN_CTL_F_ALL 0x3u

struct pktgen_ctl_start {
    uint8_t role;          /* enum pktgen_ctl_role */
    uint8_t flags;         /* PKTGEN_CTL_F_* */
    uint16_t frame_len;    /* gen: 64..9000; 0 with F_IMIX; ignored otherwise */
    uint16_t stream;       /* < PKTGEN_MAX_STREAMS */
    uint16_t delay_ms;     /* gen: wait before the first frame (the sink gets ready) */
    uint32_t duration_ms;  /* gen: 0 or how long; sink/reflect: the longest it runs */
    uint64_t rate_pps;     /* gen: > 0 and <= MAX_PPS, or 0 with F_UNPACED */
    uint64_t count;        /* gen: 0 or frames to send; one of count, duration set */
    uint8_t dst_mac[6];    /* gen: where the frames go */
    uint32_t src_ip, dst_ip;
    uint16_t src_port, dst_port;
};

struct pktgen_ctl_report {
    uint64_t tx_frames, tx_bytes, tx_refused;
    uint64_t rx_frames, rx_bytes; /* the trial's stream's stamped frames */
    uint64_t lost, reordered;
    uint64_t duplicates;   /* of rx_frames, not distinct: again, too late, forged */
    uint64_t lat_count;
    uint64_t lat_ns[5];    /* p50, p90, p99, p99.9, max: in order */
    uint64_t achieved_mpps_milli; /* the rate the role reached, pps * 1000 */
    uint64_t duration_us;  /* the role's active time */
    uint64_t ctl_bad;      /* control frames refused since the agent started */
};

struct pktgen_ctl_msg {
    uint8_t type;          /* enum pktgen_ctl_type */
    uint16_t status;       /* ACK: 0, or the errno that refused the START */
    uint64_t nonce;
    uint32_t trial;
    union {
        struct pktgen_ctl_start start;
        struct pktgen_ctl_report report;
    } u;
};

/* Why a frame is not an acceptable control message. */
enum pktgen_ctl_result {
    PKTGEN_CTL_OK = 0,
    PKTGEN_CTL_NOT_CTL,    /* not UDP/IPv4 to or from the control port (not ours) */
    PKTGEN_CTL_SHORT,      /* a control frame that ends early */
    PKTGEN_CTL_BAD_MAGIC,
    PKTGEN_CTL_BAD_VERSION,
    PKTGEN_CTL_BAD_TYPE,
    PKTGEN_CTL_BAD_FIELD,  /* a field out of its range */
    PKTGEN_CTL_N_RESULTS,
};

/* Writes a control frame of PKTGEN_CTL_FRAME_LEN bytes into buf (at least
 * that long) from src to dst (MACs), IPs and ports fixed by the protocol
 * (the switch forwards by MAC). Returns the frame length. The message is
 * written as given, so that tests can build bad ones. */
size_t pktgen_ctl_write(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                        const struct pktgen_ctl_msg *msg);

/* Parses and validates a received frame (after any VLAN tags the parser
 * of pktgen.h also skips). On PKTGEN_CTL_OK, *out holds the message and
 * src_mac (if not NULL) the sender's MAC; on anything else *out is
 * unspecified. */
enum pktgen_ctl_result pktgen_ctl_parse_buf(const uint8_t *p, size_t len, struct pktgen_ctl_msg *out,
                                            uint8_t src_mac[6]);

/* The same on an mbuf (any segmentation; the frame is copied out first). */
enum pktgen_ctl_result pktgen_ctl_parse(const struct rte_mbuf *m, struct pktgen_ctl_msg *out,
                                        uint8_t src_mac[6]);

/* Whether a frame is UDP/IPv4 to or from the control port: a cheap look
 * the data path can afford for frames that are not stamped. */
bool pktgen_ctl_is_ctl(const struct rte_mbuf *m);

/* Checks the fields of a message as the parser does (a START's fields, a
 * REPORT's percentiles in order...); 0 or -EINVAL. */
int pktgen_ctl_check(const struct pktgen_ctl_msg *msg);

#endif
