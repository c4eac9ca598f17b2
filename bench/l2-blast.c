/*
 * l2-blast: Ethernet frames of one size, as fast as the kernel takes them,
 * from one interface to another, counted at the far end. It measures a
 * switch between two network namespaces the way a VM sees it: whatever
 * sits between the two interfaces (hvnet's VMs and switch, Open vSwitch,
 * a Linux bridge) is what limits the rate.
 *
 *   l2-blast recv IFACE --size N [--timeout S] [--expect N]
 *   l2-blast send IFACE --dst MAC --size N --count N
 *
 * Frames carry the IEEE local experimental ethertype 0x88b5, a run id and
 * a sequence number. recv prints one line when the stream has ended
 * (--expect frames seen, or --timeout seconds of silence after the first):
 *   "received R lost L reordered O first_to_last_ns T fps F gbps G"
 * send prints "sent N in T ns (F fps offered)". AF_PACKET, sendmmsg and
 * recvmmsg, batches of 64.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETHERTYPE_BLAST 0x88b5
#define BATCH 64
#define MAX_FRAME 9018
#define MAGIC 0x6876626cu /* "hvbl" */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_sock(const char *ifname, int *ifindex)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE_BLAST));
    if (s < 0) {
        perror("l2-blast: socket");
        return -1;
    }
    *ifindex = (int)if_nametoindex(ifname);
    if (*ifindex == 0) {
        fprintf(stderr, "l2-blast: no interface %s\n", ifname);
        close(s);
        return -1;
    }
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETHERTYPE_BLAST),
                              .sll_ifindex = *ifindex};
    if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        perror("l2-blast: bind");
        close(s);
        return -1;
    }
    int big = 64 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
    return s;
}

static int parse_mac(const char *s, uint8_t m[6])
{
    unsigned v[6];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        m[i] = (uint8_t)v[i];
    return 0;
}

static int do_send(const char *ifname, const uint8_t dst[6], unsigned size, uint64_t count)
{
    int ifindex;
    int s = open_sock(ifname, &ifindex);
    if (s < 0)
        return 1;
    static uint8_t frames[BATCH][MAX_FRAME];
    struct iovec iov[BATCH];
    struct mmsghdr mm[BATCH];
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
    memcpy(to.sll_addr, dst, 6);
    for (int i = 0; i < BATCH; i++) {
        memset(frames[i], 0x5a, size);
        memcpy(frames[i], dst, 6);
        memset(frames[i] + 6, 0, 6); /* the kernel does not fill it in: use ours */
        frames[i][12] = ETHERTYPE_BLAST >> 8;
        frames[i][13] = ETHERTYPE_BLAST & 0xff;
        uint32_t magic = MAGIC;
        memcpy(frames[i] + 14, &magic, 4);
        iov[i] = (struct iovec){frames[i], size};
        mm[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &to, .msg_namelen = sizeof(to),
                                             .msg_iov = &iov[i], .msg_iovlen = 1}};
    }
    /* Our own MAC as the source, so a switch can learn it. */
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0)
        for (int i = 0; i < BATCH; i++)
            memcpy(frames[i] + 6, ifr.ifr_hwaddr.sa_data, 6);
    uint64_t sent = 0, t0 = now_ns();
    while (sent < count) {
        unsigned n = count - sent < BATCH ? (unsigned)(count - sent) : BATCH;
        for (unsigned i = 0; i < n; i++) {
            uint64_t seq = sent + i;
            memcpy(frames[i] + 18, &seq, 8);
        }
        int k = sendmmsg(s, mm, n, 0);
        if (k < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
                struct pollfd p = {.fd = s, .events = POLLOUT};
                poll(&p, 1, 1);
                continue;
            }
            perror("l2-blast: sendmmsg");
            return 1;
        }
        sent += (uint64_t)k;
    }
    uint64_t dt = now_ns() - t0;
    printf("sent %" PRIu64 " in %" PRIu64 " ns (%.0f fps offered)\n", sent, dt,
           (double)sent * 1e9 / (double)(dt ? dt : 1));
    close(s);
    return 0;
}

static int do_recv(const char *ifname, unsigned size, double timeout, uint64_t expect)
{
    int ifindex;
    int s = open_sock(ifname, &ifindex);
    if (s < 0)
        return 1;
    static uint8_t bufs[BATCH][MAX_FRAME + 64];
    struct iovec iov[BATCH];
    struct mmsghdr mm[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
        mm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
    }
    printf("ready\n");
    fflush(stdout);
    uint64_t got = 0, lost = 0, reordered = 0, next = 0, first = 0, last = 0;
    uint64_t idle_limit = (uint64_t)(timeout * 1e9);
    uint64_t waited_since = now_ns();
    for (;;) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        int pr = poll(&p, 1, 100);
        if (pr <= 0) {
            uint64_t idle = now_ns() - (got ? last : waited_since);
            if ((got && idle > idle_limit) || (!got && idle > 30ull * 1000000000ull))
                break;
            continue;
        }
        int k = recvmmsg(s, mm, BATCH, MSG_DONTWAIT, NULL);
        if (k <= 0)
            continue;
        uint64_t t = now_ns();
        for (int i = 0; i < k; i++) {
            const uint8_t *f = bufs[i];
            uint32_t magic;
            if (mm[i].msg_len != size)
                continue;
            memcpy(&magic, f + 14, 4);
            if (magic != MAGIC)
                continue;
            uint64_t seq;
            memcpy(&seq, f + 18, 8);
            if (!got)
                first = t;
            got++;
            if (seq < next) {
                reordered++;
                continue;
            }
            lost += seq - next;
            next = seq + 1;
        }
        last = t;
        if (expect && got >= expect)
            break;
    }
    if (expect && next < expect)
        lost += expect - next;
    uint64_t span = last > first ? last - first : 0;
    double fps = got > 1 && span ? (double)(got - 1) * 1e9 / (double)span : 0;
    printf("received %" PRIu64 " lost %" PRIu64 " reordered %" PRIu64 " first_to_last_ns %" PRIu64
           " fps %.0f gbps %.2f\n",
           got, lost, reordered, span, fps, fps * size * 8 / 1e9);
    close(s);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: l2-blast recv IFACE --size N [--timeout S] [--expect N]\n"
                    "       l2-blast send IFACE --dst MAC --size N --count N\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        usage();
        return 2;
    }
    const char *mode = argv[1], *ifname = argv[2];
    unsigned size = 0;
    uint64_t count = 0, expect = 0;
    double timeout = 1.0;
    uint8_t dst[6] = {0};
    bool have_dst = false;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size"))
            size = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--count"))
            count = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--expect"))
            expect = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--timeout"))
            timeout = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--dst"))
            have_dst = parse_mac(argv[i + 1], dst) == 0;
        else {
            usage();
            return 2;
        }
    }
    if (size < 60 || size > MAX_FRAME) {
        fprintf(stderr, "l2-blast: --size 60..%d\n", MAX_FRAME);
        return 2;
    }
    if (!strcmp(mode, "send") && have_dst && count)
        return do_send(ifname, dst, size, count);
    if (!strcmp(mode, "recv"))
        return do_recv(ifname, size, timeout, expect);
    usage();
    return 2;
}
