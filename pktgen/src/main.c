/* vswitch-pktgen: generator, sink and reflector on any DPDK ethdev port.
 * Options and ports here; the loops in run.c; the output in report.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "pktgen-ctl.h"
#include "pktgen-private.h"
#include "port-hvnet.h"

#define RING_SIZE 1024
#define RX_POOL_MBUFS 8191

static void usage(FILE *f)
{
    fprintf(f,
        "usage: vswitch-pktgen [OPTIONS] [-- EAL ARGS]\n"
        "Generate, receive and time UDP/IPv4 frames on a DPDK ethdev port.\n"
        "  --role gen|sink|reflect|agent  send (default), receive and report, swap MACs\n"
        "                           and send every frame back (the VM of a PVP test), or wait\n"
        "                           for a controller's commands (in-band, to --src-mac) and run\n"
        "                           the trials it asks for, until a signal\n"
        "  --vdev SPEC              an EAL vdev for the port (net_memif0,role=server,...);\n"
        "  --port ID                or a port id; either may be given twice: the role sends on\n"
        "                           the first, and a gen with --rx receives on the second\n"
        "  --hvnet-nic N            or the synthetic NIC N (0: the first) of the hvnet child\n"
        "                           partition this runs in, through netvsc (the default in a\n"
        "                           partition); the source MAC is then the NIC's unless given\n"
        "  --name NAME, --netns NS, --tap-broker-fd FD\n"
        "                           what vswitchd gives a VM's worker (--hv-vm): the name is\n"
        "                           used in messages; no TAP is made\n"
        "  --rx                     gen: also receive and time what comes back\n"
        "  --queues N               receive and transmit queues per port, 1..8 (default 1):\n"
        "                           all are polled, sending is on queue 0 (a peer that sends\n"
        "                           on queue 1, as OVS's PMD thread on memif, needs 2)\n"
        "  --yield                  give the CPU away (sched_yield) when a turn of the loop\n"
        "                           found nothing to receive or send: for programs sharing\n"
        "                           one CPU (a generator, a sink and a VM), which would\n"
        "                           otherwise take turns only at the scheduler's slices\n"
        "  --size N|imix            frame bytes without FCS, %u..%u (default 64), or IMIX\n"
        "                           (7:4:1 of 64/570/1518)\n"
        "  --src-mac A[-B], --dst-mac A[-B]    (default 02:00:00:00:00:01, ...:02)\n"
        "  --src-ip A[-B], --dst-ip A[-B]      IPv4 (default 10.0.0.1, 10.0.0.2)\n"
        "  --src-port A[-B], --dst-port A[-B]  UDP (default 1024, 5001)\n"
        "                           each range steps once per frame: many flows\n"
        "  --rate R                 1.5Mpps, 800kpps, 2Gbps (line rate: frame + 20 B),\n"
        "                           or 50%% of --ceiling; default: as fast as the port takes\n"
        "  --ceiling R              the line rate a %% rate refers to (pps or bps)\n"
        "  --duration S             stop after S seconds\n"
        "  --count N                stop after N frames (sent; received for a sink)\n"
        "  --stream ID              the stamp's stream id, 0..%u (default 0)\n"
        "  --drain S                gen --rx: wait up to S s for the last frames (default 1)\n"
        "  --link-wait S            wait up to S s for the link (a memif peer; default 10)\n"
        "  --linger S               after the results, keep the ports open S s without\n"
        "                           polling them (a memif peer still polling when its peer\n"
        "                           closes can crash in DPDK 22.11); a signal ends it\n"
        "  --json FILE, --csv FILE  write the results\n"
        "RFC 2544 search (the controller; agents named by MAC run --role agent):\n"
        "  --search                 per size: ceiling, NDR, PDR, latency at 10/50/90 %% of NDR,\n"
        "                           loss steps, back-to-back; one JSON document (--json)\n"
        "  --remote-sink MAC        an agent counts (p2v); without it this process receives\n"
        "  --remote-gen MAC         an agent generates, this process (or --remote-sink) sinks\n"
        "  --remote-reflect MAC     an agent reflects, this process sends and receives (pvp)\n"
        "  --sizes LIST             frame sizes and/or imix, comma-separated (default 64)\n"
        "  --trial S                trial length (default 10; --quick 2)\n"
        "  --quick                  2 s trials, 5 %% resolution, 1 back-to-back repetition\n"
        "  --resolution R           N%% of the ceiling or a rate in pps (default 1%%)\n"
        "  --pdr-loss PCT           the PDR's loss (default 0.5)\n"
        "  --b2b-trials N           back-to-back repetitions (default 5; 0: none)\n"
        "  --no-loss-steps          leave the frame loss steps out\n"
        "  --trial-hook CMD         run `CMD begin SIZE` / `CMD end SIZE` (/bin/sh) around the\n"
        "                           NDR verification trial of each size\n"
        "  --quiet                  no per-second progress line (--search keeps its line per\n"
        "                           trial)\n"
        "  --help\n"
        "The UDP checksum is 0 (none). Without EAL arguments the EAL runs on CPU 0 with\n"
        "512 MB (--in-memory, or --no-huge without free hugepages) and a --file-prefix of\n"
        "its own; with them, exactly those (plus one --vdev per --vdev above).\n",
        PKTGEN_MIN_FRAME, PKTGEN_MAX_FRAME, PKTGEN_MAX_STREAMS - 1);
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int hugepages_free(void)
{
    FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
    int n = 0;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = 0;
        fclose(f);
    }
    return n;
}

static void on_signal(int sig)
{
    (void)sig;
    pg_stop = 1;
}

static void zero_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
    (void)mp;
    (void)arg;
    (void)idx;
    struct rte_mbuf *m = obj;
    memset(m->buf_addr, 0, m->buf_len);
}

static int port_setup(uint16_t port, uint16_t nq, uint16_t max_frame, struct rte_mempool *rx_pool)
{
    struct rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(port, &info);
    if (rc < 0)
        return rc;
    struct rte_eth_conf conf = {0};
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    /* Frames longer than one mbuf arrive as chains (the receiver reads
     * through rte_pktmbuf_read); virtio refuses a jumbo MTU without it. */
    if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
        conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    if ((rc = rte_eth_dev_configure(port, nq, nq, &conf)) < 0)
        return rc;
    if (max_frame > RTE_ETHER_MAX_LEN - RTE_ETHER_CRC_LEN &&
        (rc = rte_eth_dev_set_mtu(port, (uint16_t)(max_frame - RTE_ETHER_HDR_LEN))) < 0)
        fprintf(stderr, "pktgen: port %u: MTU for %u B frames not set (%s); sending anyway\n",
                port, max_frame, rte_strerror(-rc));
    uint16_t nrx = RING_SIZE, ntx = RING_SIZE;
    if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx)) < 0)
        return rc;
    int socket = rte_eth_dev_socket_id(port);
    for (uint16_t q = 0; q < nq; q++)
        if ((rc = rte_eth_rx_queue_setup(port, q, nrx, socket, NULL, rx_pool)) < 0 ||
            (rc = rte_eth_tx_queue_setup(port, q, ntx, socket, NULL)) < 0)
            return rc;
    return rte_eth_dev_start(port);
}

static int wait_link(uint16_t port, double seconds)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (double t = 0; t <= seconds && !pg_stop; t += 0.01) {
        struct rte_eth_link link;
        if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP)
            return 0;
        nanosleep(&ts, NULL);
    }
    return -ENOLINK;
}

enum {
    OPT_ROLE = 256, OPT_VDEV, OPT_PORT, OPT_RX, OPT_SIZE, OPT_SMAC, OPT_DMAC, OPT_SIP, OPT_DIP,
    OPT_SPORT, OPT_DPORT, OPT_RATE, OPT_CEIL, OPT_DUR, OPT_COUNT, OPT_STREAM, OPT_DRAIN,
    OPT_LINK, OPT_QUEUES, OPT_YIELD, OPT_JSON, OPT_CSV, OPT_QUIET, OPT_LINGER, OPT_SEARCH,
    OPT_RSINK, OPT_RGEN, OPT_RREFL, OPT_SIZES, OPT_TRIAL, OPT_QUICK, OPT_RES, OPT_PDR, OPT_B2B,
    OPT_HOOK, OPT_HVNIC, OPT_NAME, OPT_NETNS, OPT_TAPB, OPT_NOLOSS,
};

/* "64,128,imix": up to 16 sizes, 0 for IMIX. */
static int parse_sizes(const char *s, struct pg_search_opts *so)
{
    char buf[256];
    if (strlen(s) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, s);
    so->n_sizes = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t u = 0;
        if (so->n_sizes == sizeof(so->sizes) / sizeof(so->sizes[0]))
            return -E2BIG;
        if (strcmp(t, "imix") != 0 && parse_u64(t, PKTGEN_MIN_FRAME, PKTGEN_MAX_FRAME, &u) < 0)
            return -EINVAL;
        so->sizes[so->n_sizes++] = (uint16_t)u;
    }
    return so->n_sizes ? 0 : -EINVAL;
}

static int parse_mac1(const char *s, uint8_t mac[6])
{
    struct pktgen_range r;
    int rc = pktgen_range_parse_mac(s, &r);
    if (rc < 0 || r.lo != r.hi || (r.lo >> 40) & 1)
        return -EINVAL;
    pg_mac_from_u64(r.lo, mac);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"role", required_argument, NULL, OPT_ROLE},    {"vdev", required_argument, NULL, OPT_VDEV},
        {"port", required_argument, NULL, OPT_PORT},    {"rx", no_argument, NULL, OPT_RX},
        {"size", required_argument, NULL, OPT_SIZE},    {"src-mac", required_argument, NULL, OPT_SMAC},
        {"dst-mac", required_argument, NULL, OPT_DMAC}, {"src-ip", required_argument, NULL, OPT_SIP},
        {"dst-ip", required_argument, NULL, OPT_DIP},   {"src-port", required_argument, NULL, OPT_SPORT},
        {"dst-port", required_argument, NULL, OPT_DPORT}, {"rate", required_argument, NULL, OPT_RATE},
        {"ceiling", required_argument, NULL, OPT_CEIL}, {"duration", required_argument, NULL, OPT_DUR},
        {"count", required_argument, NULL, OPT_COUNT},  {"stream", required_argument, NULL, OPT_STREAM},
        {"drain", required_argument, NULL, OPT_DRAIN},  {"link-wait", required_argument, NULL, OPT_LINK},
        {"queues", required_argument, NULL, OPT_QUEUES},
        {"yield", no_argument, NULL, OPT_YIELD},
        {"json", required_argument, NULL, OPT_JSON},    {"csv", required_argument, NULL, OPT_CSV},
        {"quiet", no_argument, NULL, OPT_QUIET},        {"linger", required_argument, NULL, OPT_LINGER},
        {"search", no_argument, NULL, OPT_SEARCH},
        {"remote-sink", required_argument, NULL, OPT_RSINK},
        {"remote-gen", required_argument, NULL, OPT_RGEN},
        {"remote-reflect", required_argument, NULL, OPT_RREFL},
        {"sizes", required_argument, NULL, OPT_SIZES},  {"trial", required_argument, NULL, OPT_TRIAL},
        {"quick", no_argument, NULL, OPT_QUICK},        {"resolution", required_argument, NULL, OPT_RES},
        {"pdr-loss", required_argument, NULL, OPT_PDR}, {"b2b-trials", required_argument, NULL, OPT_B2B},
        {"trial-hook", required_argument, NULL, OPT_HOOK},
        {"hvnet-nic", required_argument, NULL, OPT_HVNIC},
        {"name", required_argument, NULL, OPT_NAME},
        {"netns", required_argument, NULL, OPT_NETNS},
        {"tap-broker-fd", required_argument, NULL, OPT_TAPB},
        {"no-loss-steps", no_argument, NULL, OPT_NOLOSS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pg_opts o = {.frame_len = 64, .drain_s = 1};
    pktgen_range_parse_mac("02:00:00:00:00:01", &o.flow.src_mac);
    pktgen_range_parse_mac("02:00:00:00:00:02", &o.flow.dst_mac);
    pktgen_range_parse_ipv4("10.0.0.1", &o.flow.src_ip);
    pktgen_range_parse_ipv4("10.0.0.2", &o.flow.dst_ip);
    pktgen_range_parse_port("1024", &o.flow.src_port);
    pktgen_range_parse_port("5001", &o.flow.dst_port);
    struct pktgen_rate rate = {.kind = PKTGEN_RATE_UNLIMITED}, ceiling = rate;
    const char *vdev[PG_MAX_PORTS] = {NULL};
    long port_arg[PG_MAX_PORTS];
    int n_ports = 0;
    double link_wait = 10, linger = 0;
    uint64_t nq = 1;
    bool yield = false;
    struct pg_search_opts so = {.n_sizes = 1, .sizes = {64}, .pdr_loss_pct = 0.5};
    bool quick = false, set_trial = false, set_res = false, set_b2b = false;
    long hvnet_nic = -1;
    bool smac_given = false;
    const char *vm_name = getenv("HV_PARTITION_NAME");
    int o_ch;
    while ((o_ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        int rc = 0;
        uint64_t u = 0;
        switch (o_ch) {
        case OPT_ROLE:
            if (strcmp(optarg, "gen") == 0)
                o.role = PG_GEN;
            else if (strcmp(optarg, "sink") == 0)
                o.role = PG_SINK;
            else if (strcmp(optarg, "reflect") == 0)
                o.role = PG_REFLECT;
            else if (strcmp(optarg, "agent") == 0)
                o.role = PG_AGENT;
            else
                rc = -EINVAL;
            break;
        case OPT_VDEV:
        case OPT_PORT:
            if (n_ports == PG_MAX_PORTS) {
                rc = -E2BIG;
                break;
            }
            if (o_ch == OPT_VDEV) {
                vdev[n_ports] = optarg;
            } else if ((rc = parse_u64(optarg, 0, RTE_MAX_ETHPORTS - 1, &u)) == 0) {
                vdev[n_ports] = NULL;
            }
            port_arg[n_ports++] = (long)u;
            break;
        case OPT_RX:
            o.rx = true;
            break;
        case OPT_SIZE:
            if (strcmp(optarg, "imix") == 0)
                o.imix = true;
            else if ((rc = parse_u64(optarg, PKTGEN_MIN_FRAME, PKTGEN_MAX_FRAME, &u)) == 0)
                o.frame_len = (uint16_t)u, o.imix = false;
            break;
        case OPT_SMAC:
            rc = pktgen_range_parse_mac(optarg, &o.flow.src_mac);
            smac_given = true;
            break;
        case OPT_DMAC: rc = pktgen_range_parse_mac(optarg, &o.flow.dst_mac); break;
        case OPT_SIP: rc = pktgen_range_parse_ipv4(optarg, &o.flow.src_ip); break;
        case OPT_DIP: rc = pktgen_range_parse_ipv4(optarg, &o.flow.dst_ip); break;
        case OPT_SPORT: rc = pktgen_range_parse_port(optarg, &o.flow.src_port); break;
        case OPT_DPORT: rc = pktgen_range_parse_port(optarg, &o.flow.dst_port); break;
        case OPT_RATE: rc = pktgen_rate_parse(optarg, &rate); break;
        case OPT_CEIL:
            rc = pktgen_rate_parse(optarg, &ceiling);
            if (rc == 0 && ceiling.kind == PKTGEN_RATE_PCT)
                rc = -EINVAL;
            break;
        case OPT_DUR: rc = parse_double(optarg, 0.001, 86400, &o.duration_s); break;
        case OPT_COUNT: rc = parse_u64(optarg, 1, UINT64_MAX / 2, &o.count); break;
        case OPT_STREAM:
            if ((rc = parse_u64(optarg, 0, PKTGEN_MAX_STREAMS - 1, &u)) == 0)
                o.stream = (uint16_t)u;
            break;
        case OPT_DRAIN: rc = parse_double(optarg, 0, 600, &o.drain_s); break;
        case OPT_LINK: rc = parse_double(optarg, 0, 600, &link_wait); break;
        case OPT_QUEUES: rc = parse_u64(optarg, 1, 8, &nq); break;
        case OPT_YIELD: yield = true; break;
        case OPT_JSON: o.json_path = optarg; break;
        case OPT_CSV: o.csv_path = optarg; break;
        case OPT_QUIET: o.quiet = true; break;
        case OPT_LINGER: rc = parse_double(optarg, 0, 600, &linger); break;
        case OPT_SEARCH: so.on = true; break;
        case OPT_RSINK: rc = parse_mac1(optarg, so.remote_sink); so.have_sink = rc == 0; break;
        case OPT_RGEN: rc = parse_mac1(optarg, so.remote_gen); so.have_gen = rc == 0; break;
        case OPT_RREFL:
            rc = parse_mac1(optarg, so.remote_reflect);
            so.have_reflect = rc == 0;
            break;
        case OPT_SIZES: rc = parse_sizes(optarg, &so); break;
        case OPT_TRIAL: rc = parse_double(optarg, 0.01, 3600, &so.trial_s); set_trial = true; break;
        case OPT_QUICK: quick = true; break;
        case OPT_RES: {
            struct pktgen_rate res;
            rc = pktgen_rate_parse(optarg, &res);
            if (rc == 0 && res.kind == PKTGEN_RATE_PCT && res.value <= 50)
                so.resolution_pct = res.value;
            else if (rc == 0 && res.kind == PKTGEN_RATE_PPS)
                so.resolution_pps = res.value;
            else
                rc = -EINVAL;
            set_res = true;
            break;
        }
        case OPT_PDR: rc = parse_double(optarg, 0, 99, &so.pdr_loss_pct); break;
        case OPT_B2B:
            if ((rc = parse_u64(optarg, 0, 1000, &u)) == 0)
                so.b2b_trials = (unsigned)u;
            set_b2b = true;
            break;
        case OPT_HOOK: so.hook_cmd = optarg; break;
        case OPT_NOLOSS: so.no_loss_steps = true; break;
        case OPT_HVNIC:
            if ((rc = parse_u64(optarg, 0, 63, &u)) == 0)
                hvnet_nic = (long)u;
            break;
        case OPT_NAME: vm_name = optarg; break;
        case OPT_NETNS: break;
        case OPT_TAPB: /* the root's TAP broker: pktgen makes no TAP */
            if ((rc = parse_u64(optarg, 6, 1023, &u)) == 0)
                close((int)u);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (rc < 0) {
            fprintf(stderr, "vswitch-pktgen: --%s '%s': invalid (see --help)\n",
                    opts[o_ch - OPT_ROLE].name, optarg ? optarg : "");
            return 2;
        }
    }
    if (pktgen_rate_resolve(&rate, &ceiling, &o.rate) < 0) {
        fprintf(stderr, "vswitch-pktgen: a %% rate needs --ceiling in pps or bps\n");
        return 2;
    }
    bool hvnet = hvnet_nic >= 0 || (n_ports == 0 && pg_hvnet_in_partition());
    if (hvnet && (n_ports > 0 || o.json_path || o.csv_path || linger > 0)) {
        fprintf(stderr, "vswitch-pktgen: the partition's NIC is the only port; a VM's worker "
                        "writes no file (results on stdout) and has nothing to linger for\n");
        return 2;
    }
    if (n_ports == 0 && !hvnet) {
        fprintf(stderr, "vswitch-pktgen: no port (--vdev SPEC or --port ID, or --hvnet-nic N)\n");
        return 2;
    }
    if (!so.on && (so.have_sink || so.have_gen || so.have_reflect || quick || set_trial ||
                   set_res || set_b2b || so.hook_cmd || so.no_loss_steps)) {
        fprintf(stderr, "vswitch-pktgen: search options without --search\n");
        return 2;
    }
    if (so.on) {
        if (o.role != PG_GEN || (so.have_reflect && (so.have_sink || so.have_gen))) {
            fprintf(stderr, "vswitch-pktgen: --search is --role gen, with --remote-reflect "
                            "alone or --remote-sink and/or --remote-gen\n");
            return 2;
        }
        if (!set_trial)
            so.trial_s = quick ? 2 : 10;
        if (!set_res)
            so.resolution_pct = quick ? 5 : 1;
        if (!set_b2b)
            so.b2b_trials = quick ? 1 : 5;
        o.imix = false;
        o.frame_len = 64;
        for (unsigned i = 0; i < so.n_sizes; i++)
            if (so.sizes[i] > o.frame_len || (so.sizes[i] == 0 && o.frame_len < 1518))
                o.frame_len = so.sizes[i] ? so.sizes[i] : 1518;
    }
    if (o.role == PG_AGENT)
        o.frame_len = PKTGEN_MAX_FRAME;
    if (n_ports > 1 && !(o.role == PG_GEN && (o.rx || so.on))) {
        fprintf(stderr, "vswitch-pktgen: a second port is the receive side of --role gen --rx\n");
        return 2;
    }
    int n_eal_user = argc - optind;
    if (n_eal_user > 0 && strcmp(argv[optind - 1], "--") != 0) {
        fprintf(stderr, "vswitch-pktgen: unexpected argument '%s' (EAL arguments go after --)\n",
                argv[optind]);
        return 2;
    }

    char prefix[48], vdev_args[PG_MAX_PORTS][256];
    snprintf(prefix, sizeof(prefix), "--file-prefix=pktgen%d", (int)getpid());
    char *eal[64 + PG_MAX_PORTS] = {argv[0]};
    int ne = 1;
    if (n_eal_user > 0) {
        if (n_eal_user > 62) {
            fprintf(stderr, "vswitch-pktgen: too many EAL arguments\n");
            return 2;
        }
        for (int i = 0; i < n_eal_user; i++)
            eal[ne++] = argv[optind + i];
    } else if (hvnet) {
        ne = pg_hvnet_eal_args(eal, ne);
    } else {
        char *def[] = {"-l", "0", prefix, "--no-pci", "--no-telemetry", "--log-level=*:warning",
                       "-m", "512"};
        for (size_t i = 0; i < sizeof(def) / sizeof(def[0]); i++)
            eal[ne++] = def[i];
        /* --in-memory leaves no hugepage file behind; without hugepages
         * (--no-huge implies legacy memory, which --in-memory refuses) there
         * are none to leave. */
        eal[ne++] = hugepages_free() < 256 ? "--no-huge" : "--in-memory";
    }
    for (int i = 0; i < n_ports; i++) {
        if (vdev[i]) {
            snprintf(vdev_args[i], sizeof(vdev_args[i]), "--vdev=%s", vdev[i]);
            eal[ne++] = vdev_args[i];
        }
    }
    if (rte_eal_init(ne, eal) < 0) {
        fprintf(stderr, "vswitch-pktgen: DPDK did not start: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int status = 1, started = 0;
    struct pg_ports ports = {.n = hvnet ? 1 : n_ports};
    struct pg_hvnet *nic = NULL;
    struct rte_mempool *rx_pool[PG_MAX_PORTS] = {NULL};
    uint16_t max_frame = o.imix ? 1518 : o.frame_len;
    if ((so.on || o.role == PG_AGENT) && max_frame < PKTGEN_CTL_FRAME_LEN)
        max_frame = PKTGEN_CTL_FRAME_LEN;
    for (int i = 0; i < n_ports; i++) {
        uint16_t id = (uint16_t)port_arg[i];
        if (vdev[i]) {
            char name[RTE_ETH_NAME_MAX_LEN];
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(vdev[i], ","), vdev[i]);
            if (rte_eth_dev_get_port_by_name(name, &id) != 0) {
                fprintf(stderr, "vswitch-pktgen: --vdev %s: no such port\n", vdev[i]);
                goto out_ports;
            }
        } else if (!rte_eth_dev_is_valid_port(id)) {
            fprintf(stderr, "vswitch-pktgen: --port %u: no such port\n", id);
            goto out_ports;
        }
        pg_port_ethdev(&ports.port[i], id, (uint16_t)nq);
        ports.port[i].yield = yield;
    }
    if (o.role == PG_GEN || o.role == PG_AGENT) {
        unsigned mbufs = max_frame > 2048 ? 4095 : 8191;
        ports.tx_pool = rte_pktmbuf_pool_create("pg_tx", mbufs, 256, 0,
                                                (uint16_t)(RTE_PKTMBUF_HEADROOM + max_frame),
                                                (int)rte_socket_id());
        if (!ports.tx_pool) {
            fprintf(stderr, "vswitch-pktgen: no transmit pool: %s\n", rte_strerror(rte_errno));
            goto out_ports;
        }
        rte_mempool_obj_iter(ports.tx_pool, zero_obj, NULL);
    }
    if (hvnet) {
        rx_pool[0] = rte_pktmbuf_pool_create("pg_rx0", RX_POOL_MBUFS, 256, 0,
                                             RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
        struct pg_hvnet_params hp = {
            .name = vm_name ? vm_name : "?", .nic = hvnet_nic < 0 ? 0 : (unsigned)hvnet_nic,
            .max_frame = o.role == PG_GEN ? max_frame : 0, .link_wait_s = link_wait,
            .rx_pool = rx_pool[0], .yield = yield};
        if (!rx_pool[0] || pg_hvnet_start(&hp, &o, smac_given, &ports.port[0], &nic) < 0)
            goto out_ports;
    }
    for (int i = 0; i < n_ports; i++) {
        char name[32];
        snprintf(name, sizeof(name), "pg_rx%d", i);
        rx_pool[i] = rte_pktmbuf_pool_create(name, RX_POOL_MBUFS, 256, 0,
                                             RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
        int rc = rx_pool[i] ? port_setup(ports.port[i].id, (uint16_t)nq, max_frame, rx_pool[i]) : -rte_errno;
        if (rc < 0) {
            fprintf(stderr, "vswitch-pktgen: port %u: %s\n", ports.port[i].id, rte_strerror(-rc));
            goto out_ports;
        }
        started = i + 1;
    }
    for (int i = 0; i < n_ports; i++) {
        if (wait_link(ports.port[i].id, link_wait) < 0) {
            fprintf(stderr, "vswitch-pktgen: port %u: link down after %.0f s (no peer?)\n",
                    ports.port[i].id, link_wait);
            goto out_ports;
        }
    }
    static struct pg_result res;
    int rc;
    if (o.role == PG_AGENT || so.on) {
        rc = o.role == PG_AGENT ? pg_agent(&o, &ports) : pg_search(&o, &so, &ports);
        status = rc < 0 ? 1 : 0;
    } else if ((rc = pg_run(&o, &ports, &res)) < 0) {
        fprintf(stderr, "vswitch-pktgen: %s\n", strerror(-rc));
        goto out_ports;
    } else {
        status = pg_report(&o, &res) < 0 ? 1 : 0;
    }
    /* DPDK 22.11's memif unmaps a connection's regions from its interrupt
     * thread when the peer goes, under a reader that may be in rx_burst:
     * closing while the peer still polls can crash the peer. */
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (double t = 0; t < linger && !pg_stop; t += 0.01)
        nanosleep(&tick, NULL);
out_ports:
    if (hvnet)
        pg_hvnet_exit(nic, status);
    for (int i = 0; i < started; i++) {
        rte_eth_dev_stop(ports.port[i].id);
        rte_eth_dev_close(ports.port[i].id);
    }
    for (int i = 0; i < n_ports; i++)
        rte_mempool_free(rx_pool[i]);
    rte_mempool_free(ports.tx_pool);
    rte_eal_cleanup();
    return status;
}
