/*
 * Unit tests for the TAP front end (nettap/src/tap.c): named network
 * namespaces and TAP devices, with no root partition involved.
 *
 * Needs root and /dev/net/tun; each test reports itself skipped without
 * them. Every test works in namespaces of its own, named hvt-<pid>-<n>,
 * which teardown deletes whether the test passed or not, after putting the
 * test thread back into its original namespace. What the module set is
 * checked through other paths than the module's own: read-only ioctls
 * (SIOCGIF*, TUNGETIFF) and a separate libnl socket. /sys/class/net is not
 * used: it shows the namespace sysfs was mounted in, not the thread's.
 *
 * The TAP broker's tests run the root side either on a thread of its own
 * (the guest side blocks for its answers) or, for raw requests, in the
 * test thread between a send and a receive; raw records use the wire
 * format of nettap-private.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if.h> /* IFF_LOWER_UP */
#include <linux/if_packet.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/nsfs.h>
#include <linux/virtio_net.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include <cmocka.h>

#include "nettap-broker.h"
#include "nettap.h"
#include "nettap-private.h"

#define TEST_ETHERTYPE 0x88b5 /* IEEE local experimental */
#define THREAD_NETNS "/proc/thread-self/ns/net"

struct fixture {
    char ns[NETTAP_NS_NAME_MAX + 1];
    char ns2[NETTAP_NS_NAME_MAX + 1];
    char ifname[IFNAMSIZ]; /* unique on the machine too, for tests in the root namespace */
    int home;              /* the test thread's namespace before the test */
    int prev;              /* from nettap_ns_enter/setup while inside, else -1 */
    struct nettap *tap;
    struct nettap *tap2;
    /* A TAP broker for the namespace ns, and the guest's end of its socket. */
    struct nettap_broker *broker;
    int guest;
    pthread_t server;
    bool serving;
    atomic_bool stop;
    int serve_rc;
};

static const uint8_t test_mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};

static bool can_run(void)
{
    return geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0;
}

#define REQUIRE_ROOT()                                                                             \
    do {                                                                                           \
        if (!can_run()) {                                                                          \
            print_message("needs root and /dev/net/tun\n");                                        \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static int setup(void **state)
{
    static unsigned seq;
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->ns, sizeof(f->ns), "hvt-%d-%u", (int)getpid(), seq);
    snprintf(f->ns2, sizeof(f->ns2), "hvt-%d-%u-b", (int)getpid(), seq);
    snprintf(f->ifname, sizeof(f->ifname), "hvt%d%u", (int)getpid() % 1000000, seq % 100);
    seq++;
    f->prev = -1;
    f->guest = -1;
    f->home = open(THREAD_NETNS, O_RDONLY | O_CLOEXEC);
    if (f->home < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static void ns_file(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", NETTAP_NS_RUN_DIR, name);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = 0;
    nettap_destroy(f->tap);
    nettap_destroy(f->tap2);
    if (f->serving) {
        atomic_store(&f->stop, true);
        pthread_join(f->server, NULL);
    }
    nettap_broker_destroy(f->broker);
    if (f->guest >= 0)
        close(f->guest);
    if (f->prev >= 0)
        nettap_ns_leave(f->prev);
    /* Back home even if the test left the thread elsewhere. */
    if (setns(f->home, CLONE_NEWNET) < 0)
        rc = -1;
    close(f->home);
    char path[128];
    const char *names[] = {f->ns, f->ns2};
    for (int i = 0; i < 2; i++) {
        int d = nettap_ns_delete(names[i]);
        if (d < 0 && d != -ENOENT)
            rc = -1;
        ns_file(names[i], path, sizeof(path));
        if (access(path, F_OK) == 0)
            rc = -1;
    }
    free(f);
    return rc;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    return st.st_ino;
}

static ino_t current_netns(void)
{
    return inode_of(THREAD_NETNS);
}

static ino_t named_netns(const char *name)
{
    char path[128];
    ns_file(name, path, sizeof(path));
    return inode_of(path);
}

/* Read-only view of an interface in the calling thread's namespace. */
static int ifreq_get(const char *ifname, unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    memset(ifr, 0, sizeof(*ifr));
    snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", ifname);
    int rc = ioctl(s, req, ifr) < 0 ? -errno : 0;
    close(s);
    return rc;
}

static int if_flags(const char *ifname)
{
    struct ifreq ifr;
    int rc = ifreq_get(ifname, SIOCGIFFLAGS, &ifr);
    return rc < 0 ? rc : (unsigned short)ifr.ifr_flags;
}

/* The same through a libnl socket of our own (IFF_LOWER_UP and
 * IFLA_CARRIER do not fit SIOCGIFFLAGS). */
static int nl_link(const char *ifname, unsigned *flags, int *carrier, unsigned *mtu)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return -ENOMEM;
    struct rtnl_link *l = NULL;
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err >= 0)
        err = rtnl_link_get_kernel(sk, 0, ifname, &l);
    if (err >= 0) {
        if (flags)
            *flags = rtnl_link_get_flags(l);
        if (carrier)
            *carrier = rtnl_link_get_carrier(l);
        if (mtu)
            *mtu = rtnl_link_get_mtu(l);
        rtnl_link_put(l);
    }
    nl_socket_free(sk);
    return err < 0 ? -1 : 0;
}

static struct nettap_params tap_params(const char *name)
{
    struct nettap_params p;
    memset(&p, 0, sizeof(p));
    p.name = name;
    memcpy(p.mac, test_mac, 6);
    p.mtu = 1500;
    p.up = true;
    p.carrier = true;
    p.netns_fd = -1;
    return p;
}

static void enter_new_ns(struct fixture *f)
{
    bool created = false;
    assert_int_equal(nettap_ns_setup(f->ns, &created, &f->prev), 0);
    assert_true(created);
}

static void nettap_ns_create__new_name__bind_mounted_netns(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    ino_t home = current_netns();
    bool created = false;
    assert_int_equal(nettap_ns_create(f->ns, &created), 0);
    assert_true(created);
    assert_int_equal(current_netns(), home); /* the thread did not move */

    int fd = -1;
    assert_int_equal(nettap_ns_open(f->ns, &fd), 0);
    assert_int_equal(ioctl(fd, NS_GET_NSTYPE), CLONE_NEWNET);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(st.st_ino != home);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);

    /* /run/netns is a shared mount, as iproute2 leaves it. */
    FILE *mi = fopen("/proc/self/mountinfo", "r");
    assert_non_null(mi);
    char line[1024];
    bool shared = false;
    while (fgets(line, sizeof(line), mi)) {
        char mnt[512];
        if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1 &&
            strcmp(mnt, NETTAP_NS_RUN_DIR) == 0 && strstr(line, " shared:"))
            shared = true;
    }
    fclose(mi);
    assert_true(shared);
}

static void nettap_ns_create__existing__kept(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    bool created = false;
    assert_int_equal(nettap_ns_create(f->ns, &created), 0);
    ino_t first = named_netns(f->ns);
    assert_int_equal(nettap_ns_create(f->ns, &created), 0);
    assert_false(created);
    assert_int_equal(named_netns(f->ns), first);
    assert_int_equal(nettap_ns_create(f->ns, NULL), 0);
}

static void nettap_ns_create__leftover_plain_file__made_a_namespace(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    char path[128];
    ns_file(f->ns, path, sizeof(path));
    /* The directory exists after any create; make sure with ns2. */
    assert_int_equal(nettap_ns_create(f->ns2, NULL), 0);
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL, 0);
    assert_true(fd >= 0);
    close(fd);
    int nsfd;
    assert_int_equal(nettap_ns_open(f->ns, &nsfd), -ENOENT);
    bool created = false;
    assert_int_equal(nettap_ns_create(f->ns, &created), 0);
    assert_true(created);
    assert_int_equal(nettap_ns_open(f->ns, &nsfd), 0);
    assert_int_equal(ioctl(nsfd, NS_GET_NSTYPE), CLONE_NEWNET);
    close(nsfd);
}

static void nettap_ns_name__invalid__refused_with_message(void **state)
{
    (void)state;
    const char *bad[] = {
        "",          ".",
        "..",        "a/b",
        "a b",       "../x",
        "tab\tname", "0123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(nettap_ns_name_valid(bad[i]));
        assert_int_equal(nettap_ns_create(bad[i], NULL), -EINVAL);
        assert_non_null(strstr(nettap_last_error(), "namespace name"));
        assert_int_equal(nettap_ns_delete(bad[i]), -EINVAL);
    }
    assert_false(nettap_ns_name_valid(NULL));
    assert_int_equal(nettap_ns_create(NULL, NULL), -EINVAL);
    assert_true(nettap_ns_name_valid("vm-1_a.b"));
}

static void nettap_ns_open__missing__enoent(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    int fd = -1, prev = -1;
    assert_int_equal(nettap_ns_open(f->ns, &fd), -ENOENT);
    assert_non_null(strstr(nettap_last_error(), "does not exist"));
    assert_int_equal(nettap_ns_enter(f->ns, &prev), -ENOENT);
    assert_int_equal(prev, -1);
    assert_int_equal(nettap_ns_delete(f->ns), -ENOENT);
}

static void nettap_ns_setup__missing__entered_with_lo_up(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    ino_t home = current_netns();
    enter_new_ns(f);
    assert_int_equal(current_netns(), named_netns(f->ns));
    assert_true(current_netns() != home);
    int fl = if_flags("lo");
    assert_true(fl >= 0);
    assert_true(fl & IFF_UP);

    assert_int_equal(nettap_ns_leave(f->prev), 0);
    f->prev = -1;
    assert_int_equal(current_netns(), home);
    assert_int_equal(nettap_ns_leave(-1), 0);

    /* Enter the existing one again: setup does not recreate it. */
    bool created = true;
    ino_t ns = named_netns(f->ns);
    assert_int_equal(nettap_ns_setup(f->ns, &created, &f->prev), 0);
    assert_false(created);
    assert_int_equal(current_netns(), ns);
}

static void nettap_ns_enter__two_namespaces__each_its_own(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    assert_int_equal(nettap_ns_create(f->ns, NULL), 0);
    assert_int_equal(nettap_ns_create(f->ns2, NULL), 0);
    assert_true(named_netns(f->ns) != named_netns(f->ns2));
    assert_int_equal(nettap_ns_enter(f->ns, &f->prev), 0);
    assert_int_equal(current_netns(), named_netns(f->ns));
    int inner = -1;
    assert_int_equal(nettap_ns_enter(f->ns2, &inner), 0);
    assert_int_equal(current_netns(), named_netns(f->ns2));
    assert_int_equal(nettap_ns_leave(inner), 0);
    assert_int_equal(current_netns(), named_netns(f->ns));
}

static void nettap_create__name_mac_mtu__applied(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    p.mtu = 9000;
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    assert_string_equal(nettap_name(f->tap), "eth0");
    assert_int_equal(nettap_ifindex(f->tap), (int)if_nametoindex("eth0"));

    struct ifreq ifr;
    assert_int_equal(ifreq_get("eth0", SIOCGIFMTU, &ifr), 0);
    assert_int_equal(ifr.ifr_mtu, 9000);
    assert_int_equal(ifreq_get("eth0", SIOCGIFHWADDR, &ifr), 0);
    assert_memory_equal(ifr.ifr_hwaddr.sa_data, test_mac, 6);
    assert_true(if_flags("eth0") & IFF_UP);

    struct nettap_link l;
    assert_int_equal(nettap_query(f->tap, &l), 0);
    assert_int_equal(l.ifindex, nettap_ifindex(f->tap));
    assert_int_equal(l.mtu, 9000);
    assert_memory_equal(l.mac, test_mac, 6);
    assert_true(l.flags & IFF_UP);

    /* The descriptor: a TAP with a 10-byte virtio_net_hdr, non-blocking. */
    int fd = nettap_fd(f->tap);
    memset(&ifr, 0, sizeof(ifr));
    assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
    assert_string_equal(ifr.ifr_name, "eth0");
    assert_true(ifr.ifr_flags & IFF_TAP);
    assert_true(ifr.ifr_flags & IFF_NO_PI);
    assert_true(ifr.ifr_flags & IFF_VNET_HDR);
    int hdr = 0;
    assert_int_equal(ioctl(fd, TUNGETVNETHDRSZ, &hdr), 0);
    assert_int_equal(hdr, (int)sizeof(struct virtio_net_hdr));
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void nettap_create__in_netns_fd__only_there(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    ino_t home = current_netns();
    assert_int_equal(nettap_ns_create(f->ns, NULL), 0);
    int nsfd = -1;
    assert_int_equal(nettap_ns_open(f->ns, &nsfd), 0);
    struct nettap_params p = tap_params(f->ifname);
    p.netns_fd = nsfd;
    p.mtu = 4000;
    int rc = nettap_create(&p, &f->tap);
    close(nsfd);
    assert_int_equal(rc, 0);
    assert_int_equal(current_netns(), home);
    assert_int_equal(if_nametoindex(f->ifname), 0);

    /* Settings made later still reach the TAP's namespace. */
    assert_int_equal(nettap_set_mtu(f->tap, 3000), 0);
    assert_int_equal(nettap_ns_enter(f->ns, &f->prev), 0);
    assert_int_equal((int)if_nametoindex(f->ifname), nettap_ifindex(f->tap));
    struct ifreq ifr;
    assert_int_equal(ifreq_get(f->ifname, SIOCGIFMTU, &ifr), 0);
    assert_int_equal(ifr.ifr_mtu, 3000);
}

static void nettap_set_carrier__off_on__lower_up_follows(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    p.carrier = false;
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    assert_false(nettap_carrier(f->tap));

    unsigned flags = 0;
    int carrier = -1;
    assert_int_equal(nl_link("eth0", &flags, &carrier, NULL), 0);
    assert_int_equal(carrier, 0);
    assert_false(flags & IFF_LOWER_UP);
    assert_false(if_flags("eth0") & IFF_RUNNING);

    assert_int_equal(nettap_set_carrier(f->tap, true), 0);
    assert_true(nettap_carrier(f->tap));
    assert_int_equal(nl_link("eth0", &flags, &carrier, NULL), 0);
    assert_int_equal(carrier, 1);
    assert_true(flags & IFF_LOWER_UP);
    assert_true(if_flags("eth0") & IFF_RUNNING);
    struct nettap_link l;
    assert_int_equal(nettap_query(f->tap, &l), 0);
    assert_true(l.carrier);
    assert_true(l.flags & IFF_LOWER_UP);

    assert_int_equal(nettap_set_carrier(f->tap, false), 0);
    assert_int_equal(nl_link("eth0", &flags, &carrier, NULL), 0);
    assert_int_equal(carrier, 0);
    assert_false(flags & IFF_LOWER_UP);
}

static void nettap_set_mtu__range__ends_ok_outside_refused(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    unsigned mtu = 0;

    assert_int_equal(nettap_set_mtu(f->tap, JUMBO_MTU_MIN), 0);
    assert_int_equal(nl_link("eth0", NULL, NULL, &mtu), 0);
    assert_int_equal(mtu, 68);
    assert_int_equal(nettap_set_mtu(f->tap, JUMBO_MTU_MAX), 0);
    assert_int_equal(nl_link("eth0", NULL, NULL, &mtu), 0);
    assert_int_equal(mtu, 9000);

    assert_int_equal(nettap_set_mtu(f->tap, 67), -EINVAL);
    assert_non_null(strstr(nettap_last_error(), "68..9000"));
    assert_int_equal(nettap_set_mtu(f->tap, 9001), -EINVAL);
    assert_int_equal(nettap_set_mtu(f->tap, 0), -EINVAL);
    assert_int_equal(nl_link("eth0", NULL, NULL, &mtu), 0);
    assert_int_equal(mtu, 9000);

    /* At creation too, and nothing is left behind. */
    struct nettap_params q = tap_params("eth1");
    q.mtu = 9001;
    assert_int_equal(nettap_create(&q, &f->tap2), -EINVAL);
    q.mtu = 67;
    assert_int_equal(nettap_create(&q, &f->tap2), -EINVAL);
    assert_null(f->tap2);
    assert_int_equal(if_nametoindex("eth1"), 0);
}

static void nettap_create__bad_name__refused(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    const char *bad[] = {"lo", "", ".", "..", "0123456789abcdef", "a b", "a/b", "eth0:1", "ä"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nettap_params p = tap_params(bad[i]);
        assert_false(nettap_name_valid(bad[i]));
        assert_int_equal(nettap_create(&p, &f->tap), -EINVAL);
        assert_null(f->tap);
        assert_non_null(strstr(nettap_last_error(), "interface name"));
    }
    struct nettap_params p = tap_params(NULL);
    assert_int_equal(nettap_create(&p, &f->tap), -EINVAL);
    assert_true(nettap_name_valid("0123456789abcde"));
    assert_true(nettap_name_valid("vm.eth-0_1"));
    /* Only lo (and the module's own test TAPs: none) in the namespace. */
    struct if_nameindex *ni = if_nameindex();
    assert_non_null(ni);
    int n = 0;
    for (struct if_nameindex *i = ni; i->if_index; i++)
        n++;
    if_freenameindex(ni);
    assert_int_equal(n, 1);
}

static void nettap_create__duplicate_name__eexist(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    assert_int_equal(nettap_create(&p, &f->tap2), -EEXIST);
    assert_null(f->tap2);
    assert_non_null(strstr(nettap_last_error(), "already exists"));
    /* The first one is untouched. */
    assert_int_equal((int)if_nametoindex("eth0"), nettap_ifindex(f->tap));
}

static void nettap_create__bad_mac_or_offloads__refused(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    p.mac[0] = 0x01; /* multicast */
    assert_int_equal(nettap_create(&p, &f->tap), -EINVAL);
    assert_non_null(strstr(nettap_last_error(), "multicast"));
    p = tap_params("eth0");
    p.tso = true; /* without csum */
    assert_int_equal(nettap_create(&p, &f->tap), -EINVAL);
    assert_int_equal(if_nametoindex("eth0"), 0);

    p.csum = true;
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    assert_int_equal(nettap_set_offload(f->tap, false, true), -EINVAL);
    assert_int_equal(nettap_set_offload(f->tap, true, false), 0);
    assert_int_equal(nettap_set_offload(f->tap, false, false), 0);
    const uint8_t mcast[6] = {0x33, 0x33, 0, 0, 0, 1};
    assert_int_equal(nettap_set_mac(f->tap, mcast), -EINVAL);
}

static void nettap_create__zero_mac__random_unicast(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    memset(p.mac, 0, 6);
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    struct nettap_link l;
    assert_int_equal(nettap_query(f->tap, &l), 0);
    static const uint8_t zero[6];
    assert_memory_not_equal(l.mac, zero, 6);
    assert_false(l.mac[0] & 1);
}

static void nettap_set_mac_and_up__changed__visible(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    const uint8_t mac2[6] = {0x00, 0x15, 0x5d, 0x01, 0x02, 0x03};
    assert_int_equal(nettap_set_mac(f->tap, mac2), 0);
    struct ifreq ifr;
    assert_int_equal(ifreq_get("eth0", SIOCGIFHWADDR, &ifr), 0);
    assert_memory_equal(ifr.ifr_hwaddr.sa_data, mac2, 6);

    assert_int_equal(nettap_set_up(f->tap, false), 0);
    assert_false(if_flags("eth0") & IFF_UP);
    assert_int_equal(nettap_set_up(f->tap, true), 0);
    assert_true(if_flags("eth0") & IFF_UP);
}

static void nettap_destroy__tap__device_gone(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    assert_true(if_nametoindex("eth0") > 0);
    nettap_destroy(f->tap);
    f->tap = NULL;
    assert_int_equal(if_nametoindex("eth0"), 0);
    assert_int_equal(nl_link("eth0", NULL, NULL, NULL), -1);
    nettap_destroy(NULL);
    /* The name is free again. */
    assert_int_equal(nettap_create(&p, &f->tap), 0);
}

static int packet_socket(int ifindex)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(TEST_ETHERTYPE));
    if (s < 0)
        return -1;
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(TEST_ETHERTYPE), .sll_ifindex = ifindex};
    if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        close(s);
        return -1;
    }
    return s;
}

static void test_frame(uint8_t *fr, size_t len, uint8_t fill)
{
    memset(fr, 0xff, 6);
    memcpy(fr + 6, test_mac, 6);
    fr[12] = TEST_ETHERTYPE >> 8;
    fr[13] = TEST_ETHERTYPE & 0xff;
    for (size_t i = 14; i < len; i++)
        fr[i] = (uint8_t)(fill + i);
}

/* The layout hv-vm relies on: one readv/writev per frame, a zeroed
 * virtio_net_hdr first when no offload is involved. */
static void nettap_fd__frames_both_ways__vnet_hdr_framed(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    enter_new_ns(f);
    struct nettap_params p = tap_params("eth0");
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    int fd = nettap_fd(f->tap);
    int ps = packet_socket(nettap_ifindex(f->tap));
    assert_true(ps >= 0);

    /* Stack -> TAP descriptor (the VM sends). */
    uint8_t out[200], in[2048];
    test_frame(out, sizeof(out), 7);
    assert_int_equal(send(ps, out, sizeof(out), 0), (ssize_t)sizeof(out));
    bool seen = false;
    for (int tries = 0; tries < 50 && !seen; tries++) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        struct virtio_net_hdr vh;
        struct iovec iov[2] = {{&vh, sizeof(vh)}, {in, sizeof(in)}};
        ssize_t r = readv(fd, iov, 2);
        if (r < (ssize_t)sizeof(vh) + 14 || in[12] != out[12] || in[13] != out[13])
            continue; /* IPv6 neighbour discovery and the like */
        assert_int_equal(r, (ssize_t)(sizeof(vh) + sizeof(out)));
        assert_memory_equal(in, out, sizeof(out));
        assert_int_equal(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
        seen = true;
    }
    assert_true(seen);

    /* TAP descriptor -> stack (the VM receives). */
    test_frame(out, sizeof(out), 42);
    memcpy(out, test_mac, 6); /* to the TAP's own MAC */
    out[6] = 0x02;
    struct virtio_net_hdr vh;
    memset(&vh, 0, sizeof(vh));
    vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    struct iovec iov[2] = {{&vh, sizeof(vh)}, {out, sizeof(out)}};
    assert_int_equal(writev(fd, iov, 2), (ssize_t)(sizeof(vh) + sizeof(out)));
    struct pollfd pfd = {.fd = ps, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    ssize_t r = recv(ps, in, sizeof(in), 0);
    assert_int_equal(r, (ssize_t)sizeof(out));
    assert_memory_equal(in, out, sizeof(out));
    close(ps);

    /* Nothing more waiting: a non-blocking read says so. */
    struct iovec rio[2] = {{&vh, sizeof(vh)}, {in, sizeof(in)}};
    while (readv(fd, rio, 2) > 0)
        ;
    assert_int_equal(errno, EAGAIN);
}

static void nettap_ns_delete__with_tap__name_gone_new_namespace_empty(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    assert_int_equal(nettap_ns_create(f->ns, NULL), 0);
    ino_t old = named_netns(f->ns);
    int nsfd = -1;
    assert_int_equal(nettap_ns_open(f->ns, &nsfd), 0);
    struct nettap_params p = tap_params("eth0");
    p.netns_fd = nsfd;
    assert_int_equal(nettap_create(&p, &f->tap), 0);
    close(nsfd);

    assert_int_equal(nettap_ns_delete(f->ns), 0);
    char path[128];
    ns_file(f->ns, path, sizeof(path));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(nettap_ns_open(f->ns, &nsfd), -ENOENT);
    assert_int_equal(nettap_ns_delete(f->ns), -ENOENT);

    /* The TAP kept its (now nameless) namespace alive; dropping it frees
     * both. A namespace made under the same name is a fresh one. */
    nettap_destroy(f->tap);
    f->tap = NULL;
    enter_new_ns(f);
    assert_true(named_netns(f->ns) != old);
    assert_int_equal(if_nametoindex("eth0"), 0);
}

/* --- The TAP broker ------------------------------------------------------ */

#define GUEST_UID 1879113730u
#define GUEST_GID 1879113731u

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

/* A broker for f->ns (made here), and the guest's end in f->guest. */
static void broker_make(struct fixture *f, uint64_t (*now)(void))
{
    assert_int_equal(nettap_ns_create(f->ns, NULL), 0);
    int nsfd = -1, sv[2];
    assert_int_equal(nettap_ns_open(f->ns, &nsfd), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    struct nettap_broker_params bp = {
        .sock = sv[0], .netns_fd = nsfd, .owner_uid = GUEST_UID, .owner_gid = GUEST_GID,
        .now_ns = now};
    int rc = nettap_broker_create(&bp, &f->broker);
    close(nsfd);
    assert_int_equal(rc, 0);
    f->guest = sv[1];
}

static void *serve_loop(void *arg)
{
    struct fixture *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd pfd = {.fd = nettap_broker_fd(f->broker), .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int rc = nettap_broker_serve(f->broker);
        if (rc < 0) {
            f->serve_rc = rc;
            break;
        }
    }
    return NULL;
}

/* The broker served from a thread; the test thread is the guest, in the
 * VM's namespace. */
static void broker_start(struct fixture *f)
{
    broker_make(f, NULL);
    assert_int_equal(pthread_create(&f->server, NULL, serve_loop, f), 0);
    f->serving = true;
    assert_int_equal(nettap_ns_enter(f->ns, &f->prev), 0);
}

static struct nettap_broker_request raw_req(enum nettap_broker_op op, uint32_t seq)
{
    struct nettap_broker_request r;
    memset(&r, 0, sizeof(r));
    r.magic = NETTAP_BROKER_MAGIC;
    r.op = (uint16_t)op;
    r.seq = seq;
    return r;
}

/* Send len bytes of rec (and fd, if >= 0) on the guest's end, have the
 * broker serve in this thread, and read its answer. Returns the serve
 * result; *fd_out gets a passed descriptor or -1. */
static int raw_call(struct fixture *f, const void *rec, size_t len, int fd,
                    struct nettap_broker_reply *rep, int *fd_out)
{
    struct iovec iov = {(void *)rec, len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    assert_int_equal(sendmsg(f->guest, &mh, 0), (ssize_t)len);
    int rc = nettap_broker_serve(f->broker);
    if (rc < 0)
        return rc;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } rctl;
    struct iovec riov = {rep, sizeof(*rep)};
    struct msghdr rmh = {
        .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rctl.buf,
        .msg_controllen = sizeof(rctl.buf)};
    assert_int_equal(recvmsg(f->guest, &rmh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC),
                     (ssize_t)sizeof(*rep));
    *fd_out = -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&rmh);
    if (c && c->cmsg_type == SCM_RIGHTS)
        memcpy(fd_out, CMSG_DATA(c), sizeof(int));
    return rc;
}

/* Owner and group of a TUN/TAP device, from its IFLA_LINKINFO. */
struct tun_ids {
    int64_t owner, group;
};

static int on_tun_link(struct nl_msg *msg, void *arg)
{
    struct tun_ids *ids = arg;
    struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1], *td[IFLA_TUN_MAX + 1];
    if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0 ||
        !tb[IFLA_LINKINFO] || nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) < 0 ||
        !li[IFLA_INFO_DATA] || nla_parse_nested(td, IFLA_TUN_MAX, li[IFLA_INFO_DATA], NULL) < 0)
        return NL_SKIP;
    if (td[IFLA_TUN_OWNER])
        ids->owner = nla_get_u32(td[IFLA_TUN_OWNER]);
    if (td[IFLA_TUN_GROUP])
        ids->group = nla_get_u32(td[IFLA_TUN_GROUP]);
    return NL_OK;
}

static struct tun_ids tun_owner(int ifindex)
{
    struct tun_ids ids = {-1, -1};
    struct nl_sock *sk = nl_socket_alloc();
    assert_non_null(sk);
    assert_int_equal(nl_connect(sk, NETLINK_ROUTE), 0);
    nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_tun_link, &ids);
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    assert_true(nl_send_simple(sk, RTM_GETLINK, 0, &ifi, sizeof(ifi)) >= 0);
    nl_recvmsgs_default(sk);
    nl_socket_free(sk);
    return ids;
}

static void nettap_create_brokered__guest__tap_in_its_namespace_owned_by_it(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    broker_start(f);
    struct nettap_params p = tap_params("eth0");
    p.mtu = 4000;
    p.csum = true;
    assert_int_equal(nettap_create_brokered(f->guest, &p, &f->tap), 0);
    int ifindex = nettap_ifindex(f->tap);
    assert_int_equal(ifindex, (int)if_nametoindex("eth0"));
    struct ifreq ifr;
    assert_int_equal(ifreq_get("eth0", SIOCGIFMTU, &ifr), 0);
    assert_int_equal(ifr.ifr_mtu, 4000);
    assert_int_equal(ifreq_get("eth0", SIOCGIFHWADDR, &ifr), 0);
    assert_memory_equal(ifr.ifr_hwaddr.sa_data, test_mac, 6);
    assert_true(if_flags("eth0") & IFF_UP);
    int fd = nettap_fd(f->tap);
    memset(&ifr, 0, sizeof(ifr));
    assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
    assert_string_equal(ifr.ifr_name, "eth0");
    assert_true(ifr.ifr_flags & IFF_VNET_HDR);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct tun_ids ids = tun_owner(ifindex);
    assert_int_equal(ids.owner, GUEST_UID);
    assert_int_equal(ids.group, GUEST_GID);
    /* The guest's own unprivileged calls: carrier on its descriptor, and
     * notifications and queries on its netlink sockets. */
    assert_int_equal(nettap_set_carrier(f->tap, false), 0);
    struct nettap_link l;
    assert_int_equal(nettap_query(f->tap, &l), 0);
    assert_false(l.carrier);
    /* Closing the descriptor deletes the device: the root kept no copy
     * (once its serve call is over: it closes its copy after sending). */
    atomic_store(&f->stop, true);
    pthread_join(f->server, NULL);
    f->serving = false;
    nettap_destroy(f->tap);
    f->tap = NULL;
    assert_int_equal(if_nametoindex("eth0"), 0);
    struct nettap_broker_stats st;
    nettap_broker_get_stats(f->broker, &st);
    assert_int_equal(st.created, 1);
    assert_int_equal(st.failed + st.malformed + st.not_ours + st.over_budget, 0);
}

static void nettap_set_mtu__brokered__set_by_the_root_or_refused(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    broker_start(f);
    struct nettap_params p = tap_params("eth0");
    assert_int_equal(nettap_create_brokered(f->guest, &p, &f->tap), 0);
    assert_int_equal(nettap_set_mtu(f->tap, 9000), 0);
    struct ifreq ifr;
    assert_int_equal(ifreq_get("eth0", SIOCGIFMTU, &ifr), 0);
    assert_int_equal(ifr.ifr_mtu, 9000);
    static const uint8_t mac2[6] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x31};
    assert_int_equal(nettap_set_mac(f->tap, mac2), 0);
    assert_int_equal(ifreq_get("eth0", SIOCGIFHWADDR, &ifr), 0);
    assert_memory_equal(ifr.ifr_hwaddr.sa_data, mac2, 6);
    assert_int_equal(nettap_set_up(f->tap, false), 0);
    assert_false(if_flags("eth0") & IFF_UP);
    assert_int_equal(nettap_set_up(f->tap, true), 0);
    assert_true(if_flags("eth0") & IFF_UP);
    /* The kernel's refusal comes back with the root's words for it. */
    struct nettap *t = f->tap;
    int saved = t->ifindex;
    t->ifindex = 1; /* lo: not this guest's */
    assert_int_equal(nettap_set_mtu(t, 2000), -EPERM);
    assert_non_null(strstr(nettap_last_error(), "not a TAP of this VM"));
    t->ifindex = saved;
    unsigned mtu = 0;
    assert_int_equal(nl_link("lo", NULL, NULL, &mtu), 0);
    assert_int_equal(mtu, 65536);
    struct nettap_broker_stats st;
    nettap_broker_get_stats(f->broker, &st);
    assert_int_equal(st.changed, 4);
    assert_int_equal(st.not_ours, 1);
}

/*
 * A TAP the guest closed leaves its index free in the VM's namespace, and
 * an interface that comes there later may take that very index (ip link add
 * ... index N, or a device moved in keeps its index when it is free). The
 * broker must not take such an interface for the TAP it once made.
 */
static void nettap_broker_serve__closed_tap_index_reused__not_ours(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    broker_start(f);
    struct nettap_params p = tap_params("eth0");
    assert_int_equal(nettap_create_brokered(f->guest, &p, &f->tap), 0);
    int ifindex = nettap_ifindex(f->tap);
    assert_true(ifindex > 1);
    /* The guest closes its TAP: the device is gone, its index free. */
    atomic_store(&f->stop, true);
    pthread_join(f->server, NULL);
    f->serving = false;
    nettap_destroy(f->tap);
    f->tap = NULL;
    assert_int_equal(if_nametoindex("eth0"), 0);
    /* The operator's interface at that index, in the VM's namespace. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "ip -n %s link add eth0 index %d mtu 1500 type veth peer name %.8sp >/dev/null 2>&1",
             f->ns, ifindex, f->ifname);
    if (system(cmd) != 0) {
        print_message("cannot make a veth at index %d\n", ifindex);
        skip();
    }
    assert_int_equal((int)if_nametoindex("eth0"), ifindex);
    static const char *const what[] = {"MTU", "MAC", "up"};
    for (int op = NETTAP_BROKER_OP_SET_MTU; op <= NETTAP_BROKER_OP_SET_UP; op++) {
        struct nettap_broker_request r = raw_req((enum nettap_broker_op)op, 100u + (uint32_t)op);
        r.ifindex = ifindex;
        r.mtu = 1400;
        static const uint8_t mac2[6] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x99};
        memcpy(r.mac, mac2, 6);
        r.flags = NETTAP_BROKER_F_UP;
        struct nettap_broker_reply rep;
        int fd = -1;
        assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
        assert_int_equal(fd, -1);
        if (rep.status != -EPERM)
            fail_msg("set %s on an interface that took a closed TAP's index: status %d, not EPERM",
                     what[op - NETTAP_BROKER_OP_SET_MTU], rep.status);
    }
    unsigned mtu = 0, flags = 0;
    assert_int_equal(nl_link("eth0", &flags, NULL, &mtu), 0);
    assert_int_equal(mtu, 1500);
    assert_false(flags & IFF_UP);
    struct ifreq ifr;
    assert_int_equal(ifreq_get("eth0", SIOCGIFHWADDR, &ifr), 0);
    assert_true(ifr.ifr_hwaddr.sa_data[5] != (char)0x99);
    struct nettap_broker_stats st;
    nettap_broker_get_stats(f->broker, &st);
    assert_int_equal(st.not_ours, 3);
    assert_int_equal(st.changed, 0);
}

static void nettap_broker_serve__malformed__refused_counted_still_serving(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    broker_make(f, NULL);
    struct nettap_broker_reply rep;
    int fd;
    struct nettap_broker_request r = raw_req(NETTAP_BROKER_OP_CREATE, 1);
    memcpy(r.name, "eth0", 4);
    memcpy(r.mac, test_mac, 6);
    r.mtu = 1500;

    struct nettap_broker_request bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = r;
    bad[0].magic ^= 1;
    bad[1].op = 9;
    bad[2].flags = 0x100;
    bad[3].reserved[1] = 1;
    memset(bad[4].name, 'x', sizeof(bad[4].name)); /* no NUL */
    bad[5].op = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(raw_call(f, &bad[i], sizeof(bad[i]), -1, &rep, &fd), 0);
        assert_int_equal(rep.status, -EINVAL);
        assert_int_equal(rep.seq, 1);
        assert_int_equal(fd, -1);
    }
    /* Short, long, and with a descriptor. */
    uint8_t big[sizeof(r) + 8] = {0};
    memcpy(big, &r, sizeof(r));
    assert_int_equal(raw_call(f, &r, sizeof(r) - 1, -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EINVAL);
    assert_int_equal(raw_call(f, big, sizeof(big), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EINVAL);
    int bait = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(raw_call(f, &r, sizeof(r), bait, &rep, &fd), 0);
    assert_int_equal(rep.status, -EINVAL);
    close(bait);
    /* A bad name, MTU or MAC is the parameter checks' business. */
    struct nettap_broker_request badp = r;
    memcpy(badp.name, "lo", 3);
    assert_int_equal(raw_call(f, &badp, sizeof(badp), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EINVAL);
    badp = r;
    badp.mtu = 9001;
    assert_int_equal(raw_call(f, &badp, sizeof(badp), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EINVAL);
    assert_non_null(strstr(rep.error, "9001"));
    badp = r;
    badp.mac[0] = 1;
    assert_int_equal(raw_call(f, &badp, sizeof(badp), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EINVAL);

    struct nettap_broker_stats st;
    nettap_broker_get_stats(f->broker, &st);
    assert_int_equal(st.malformed, 9);
    assert_int_equal(st.failed, 3);
    assert_int_equal(st.created, 0);
    /* And a good one still works. */
    assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, 0);
    assert_true(fd >= 0);
    assert_true(rep.ifindex > 0);
    close(fd);
}

static void nettap_broker_serve__burst_spent__eagain_until_refilled(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    fake_now = 1000000000ull;
    broker_make(f, fake_clock);
    struct nettap_broker_reply rep;
    int fd;
    /* Cheap requests: changes of an interface that is not the guest's. */
    struct nettap_broker_request r = raw_req(NETTAP_BROKER_OP_SET_UP, 5);
    r.ifindex = 1;
    for (int i = 0; i < NETTAP_BROKER_BURST; i++) {
        assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
        assert_int_equal(rep.status, -EPERM);
    }
    assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EAGAIN);
    /* One token comes back every 1/RATE s. */
    fake_now += 1000000000ull / NETTAP_BROKER_RATE;
    assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EPERM);
    assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -EAGAIN);
    struct nettap_broker_stats st;
    nettap_broker_get_stats(f->broker, &st);
    assert_int_equal(st.over_budget, 2);
    assert_int_equal(st.not_ours, NETTAP_BROKER_BURST + 1);
}

static void nettap_broker_serve__taps_max__enospc_until_one_closed(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    fake_now = 1000000000ull;
    broker_make(f, fake_clock);
    struct nettap_broker_reply rep;
    int fds[NETTAP_BROKER_TAPS_MAX];
    struct nettap_broker_request r = raw_req(NETTAP_BROKER_OP_CREATE, 7);
    memcpy(r.mac, test_mac, 6);
    r.mtu = 1500;
    for (int i = 0; i < NETTAP_BROKER_TAPS_MAX; i++) {
        fake_now += 1000000000ull; /* budget is not what this is about */
        snprintf(r.name, sizeof(r.name), "t%d", i);
        assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fds[i]), 0);
        assert_int_equal(rep.status, 0);
        assert_true(fds[i] >= 0);
    }
    int fd;
    memcpy(r.name, "tmore", 6);
    assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, -ENOSPC);
    close(fds[10]); /* the device goes; the broker notices at the next create */
    assert_int_equal(raw_call(f, &r, sizeof(r), -1, &rep, &fd), 0);
    assert_int_equal(rep.status, 0);
    close(fd);
    for (int i = 0; i < NETTAP_BROKER_TAPS_MAX; i++)
        if (i != 10)
            close(fds[i]);
    struct nettap_broker_stats st;
    nettap_broker_get_stats(f->broker, &st);
    assert_int_equal(st.created, NETTAP_BROKER_TAPS_MAX + 1);
    assert_int_equal(st.over_budget, 1);
}

static void nettap_broker_serve__guest_not_reading__dropped(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    fake_now = 1000000000ull;
    broker_make(f, fake_clock);
    struct nettap_broker_request r = raw_req(NETTAP_BROKER_OP_SET_UP, 9);
    assert_int_equal(fcntl(f->guest, F_SETFL, O_NONBLOCK), 0);
    int rc = 0, rounds = 0;
    while (rc == 0 && rounds++ < 100000) {
        for (int i = 0; i < NETTAP_BROKER_BATCH; i++)
            if (send(f->guest, &r, sizeof(r), 0) < 0 && errno != EAGAIN)
                fail_msg("send: %s", strerror(errno));
        rc = nettap_broker_serve(f->broker);
    }
    assert_int_equal(rc, -ECONNRESET);
}

static void nettap_broker_serve__guest_hung_up__econnreset(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    broker_make(f, NULL);
    assert_int_equal(nettap_broker_serve(f->broker), 0); /* nothing yet */
    close(f->guest);
    f->guest = -1;
    assert_int_equal(nettap_broker_serve(f->broker), -ECONNRESET);
}

static void nettap_create_brokered__bad_name_or_no_broker__refused(void **state)
{
    REQUIRE_ROOT();
    struct fixture *f = *state;
    broker_make(f, NULL);
    struct nettap_params p = tap_params("lo");
    assert_int_equal(nettap_create_brokered(f->guest, &p, &f->tap), -EINVAL);
    p = tap_params("eth0");
    p.netns_fd = 0;
    assert_int_equal(nettap_create_brokered(f->guest, &p, &f->tap), -EINVAL);
    struct nettap_broker_stats st;
    nettap_broker_get_stats(f->broker, &st);
    assert_int_equal(st.requests + st.malformed, 0); /* nothing was sent */
    nettap_broker_destroy(f->broker);
    f->broker = NULL;
    p = tap_params("eth0");
    assert_int_equal(nettap_create_brokered(f->guest, &p, &f->tap), -ECONNRESET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nettap_ns_create__new_name__bind_mounted_netns, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_ns_create__existing__kept, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_ns_create__leftover_plain_file__made_a_namespace,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_ns_name__invalid__refused_with_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_ns_open__missing__enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_ns_setup__missing__entered_with_lo_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_ns_enter__two_namespaces__each_its_own, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_create__name_mac_mtu__applied, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_create__in_netns_fd__only_there, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_set_carrier__off_on__lower_up_follows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_set_mtu__range__ends_ok_outside_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_create__bad_name__refused, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_create__duplicate_name__eexist, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_create__bad_mac_or_offloads__refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_create__zero_mac__random_unicast, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_set_mac_and_up__changed__visible, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_destroy__tap__device_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_fd__frames_both_ways__vnet_hdr_framed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(nettap_ns_delete__with_tap__name_gone_new_namespace_empty,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            nettap_create_brokered__guest__tap_in_its_namespace_owned_by_it, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_set_mtu__brokered__set_by_the_root_or_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            nettap_broker_serve__malformed__refused_counted_still_serving, setup, teardown),
        cmocka_unit_test_setup_teardown(
            nettap_broker_serve__burst_spent__eagain_until_refilled, setup, teardown),
        cmocka_unit_test_setup_teardown(
            nettap_broker_serve__taps_max__enospc_until_one_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_broker_serve__closed_tap_index_reused__not_ours,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_broker_serve__guest_not_reading__dropped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(nettap_broker_serve__guest_hung_up__econnreset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            nettap_create_brokered__bad_name_or_no_broker__refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
