/* What the user asks for: field ranges, rates, the IMIX pattern. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ether.h>

#include "pktgen.h"

const uint16_t pktgen_imix[PKTGEN_IMIX_LEN] = {64, 570, 64, 1518, 64, 570,
                                               64, 64,  570, 64, 570,  64};

static int parse_ipv4(const char *s, size_t n, uint64_t *out)
{
    char buf[16];
    unsigned a, b, c, d;
    char tail;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (sscanf(buf, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
        c > 255 || d > 255 || buf[0] < '0' || buf[0] > '9')
        return -EINVAL;
    *out = (uint64_t)a << 24 | b << 16 | c << 8 | d;
    return 0;
}

static int parse_port(const char *s, size_t n, uint64_t *out)
{
    char buf[8];
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_mac(const char *s, size_t n, uint64_t *out)
{
    char buf[RTE_ETHER_ADDR_FMT_SIZE];
    struct rte_ether_addr ea;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (rte_ether_unformat_addr(buf, &ea) < 0)
        return -EINVAL;
    uint64_t v = 0;
    for (int i = 0; i < RTE_ETHER_ADDR_LEN; i++)
        v = v << 8 | ea.addr_bytes[i];
    *out = v;
    return 0;
}

static int parse_range(const char *s, int (*one)(const char *, size_t, uint64_t *),
                       struct pktgen_range *out)
{
    const char *dash = strchr(s, '-');
    uint64_t lo, hi;
    int rc = one(s, dash ? (size_t)(dash - s) : strlen(s), &lo);
    if (rc < 0)
        return rc;
    hi = lo;
    if (dash && (rc = one(dash + 1, strlen(dash + 1), &hi)) < 0)
        return rc;
    if (lo > hi)
        return -EINVAL;
    *out = (struct pktgen_range){.lo = lo, .hi = hi, .cur = lo};
    return 0;
}

int pktgen_range_parse_ipv4(const char *s, struct pktgen_range *out)
{
    return parse_range(s, parse_ipv4, out);
}

int pktgen_range_parse_port(const char *s, struct pktgen_range *out)
{
    return parse_range(s, parse_port, out);
}

int pktgen_range_parse_mac(const char *s, struct pktgen_range *out)
{
    return parse_range(s, parse_mac, out);
}

uint64_t pktgen_range_next(struct pktgen_range *r)
{
    uint64_t v = r->cur;
    r->cur = r->cur >= r->hi ? r->lo : r->cur + 1;
    return v;
}

int pktgen_rate_parse(const char *s, struct pktgen_rate *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || !(v > 0))
        return -EINVAL;
    double mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1e3, end++;
    else if (*end == 'M')
        mult = 1e6, end++;
    else if (*end == 'G')
        mult = 1e9, end++;
    struct pktgen_rate r = {.value = v * mult};
    if (strcmp(end, "pps") == 0 || (*end == '\0' && mult == 1))
        r.kind = PKTGEN_RATE_PPS;
    else if (strcmp(end, "bps") == 0)
        r.kind = PKTGEN_RATE_BPS;
    else if (strcmp(end, "%") == 0 && mult == 1 && v <= 100)
        r.kind = PKTGEN_RATE_PCT;
    else
        return -EINVAL;
    *out = r;
    return 0;
}

int pktgen_rate_resolve(const struct pktgen_rate *rate, const struct pktgen_rate *ceiling,
                        struct pktgen_rate *out)
{
    if (rate->kind != PKTGEN_RATE_PCT) {
        *out = *rate;
        return 0;
    }
    if (!ceiling || (ceiling->kind != PKTGEN_RATE_PPS && ceiling->kind != PKTGEN_RATE_BPS))
        return -EINVAL;
    *out = (struct pktgen_rate){.kind = ceiling->kind, .value = ceiling->value * rate->value / 100};
    return 0;
}
