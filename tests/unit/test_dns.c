/*
 * test_dns: asynchronous DNS on a real loop against a real NSD.
 *
 * The group setup starts NSD on a free loopback port serving example.test
 * (MX with equal and different preferences, A/AAAA of the exchanges, a
 * domain without MX, a null MX, CNAME chains, a TXT record longer than 255
 * octets, a wildcard, NXDOMAIN names) and a loop group of one loop; the
 * resolver under test forwards to NSD ("nameserver 127.0.0.1:PORT"). The
 * tests check exact statuses, records and TTLs as a caller sees them, the
 * temporary failures (REFUSED -> SERVFAIL, a silent server -> TIMEOUT, a
 * closed port), cancelling, 200 concurrent queries, dns_free() with queries
 * outstanding (also from inside a callback), counters and configuration
 * errors. The parsers have their own tests (test_dns_answer,
 * test_dns_resolvconf). Tests that need NSD are skipped, with a message,
 * only when the nsd binary is missing.
 *
 * cmocka's assertions run on the main thread only: loop-side code records
 * what it saw and the main thread asserts after a latch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"
#include "net/dns.h"
#include "net/loop.h"

#include "support/testkit.h"

/* ---- latches and jobs on the loop ---- */

static struct loop_group *g_group;
static struct loop *g_loop;

typedef void job_fn(void *arg);

struct job {
    job_fn *fn;
    void *arg;
    struct latch done;
};

static void
job_run(struct loop *lp, void *arg)
{
    struct job *j = arg;

    (void)lp;
    j->fn(j->arg);
    latch_down(&j->done);
}

/* Runs fn(arg) on the loop and waits for it. */
static void
on_loop(job_fn *fn, void *arg)
{
    struct job j = {.fn = fn, .arg = arg};

    latch_init(&j.done, 1);
    loop_post(g_loop, job_run, &j);
    assert_true(latch_wait(&j.done, 20000));
    latch_destroy(&j.done);
}

/* ---- results as the caller saw them ---- */

#define RES_MAX 8

struct res {
    struct latch *latch; /* borrowed: counted down per call */
    int calls;
    bool reentered; /* the callback ran inside dns_lookup() */
    bool after_free;
    enum dns_status status;
    enum dns_rrtype type;
    uint32_t ttl;
    bool secure, bogus;
    size_t n;
    uint16_t pref[RES_MAX];
    char host[RES_MAX][256];
    struct dns_addr addrs[RES_MAX];
    char txt[RES_MAX][1024];
    size_t txt_len[RES_MAX];
    char qname[256];
    char why[256];
    uint64_t at_ms;
};

static bool in_lookup;     /* loop thread only */
static bool freed_already; /* loop thread only */

static void
res_cb(const struct dns_answer *a, void *arg)
{
    struct res *r = arg;

    r->calls++;
    r->reentered |= in_lookup;
    r->after_free |= freed_already;
    r->status = a->status;
    r->type = a->type;
    r->ttl = a->ttl;
    r->secure = a->secure;
    r->bogus = a->bogus;
    r->n = a->n;
    r->at_ms = clock_mono_ms();
    (void)snprintf(r->qname, sizeof(r->qname), "%s", a->qname ? a->qname : "(null)");
    (void)snprintf(r->why, sizeof(r->why), "%s", a->why ? a->why : "");
    for (size_t i = 0; i < a->n && i < RES_MAX; i++) {
        if (a->mx) {
            r->pref[i] = a->mx[i].pref;
            (void)snprintf(r->host[i], sizeof(r->host[i]), "%s", a->mx[i].host);
        }
        if (a->addrs) {
            r->addrs[i] = a->addrs[i];
        }
        if (a->txt) {
            r->txt_len[i] = a->txt_len[i];
            (void)snprintf(r->txt[i], sizeof(r->txt[i]), "%s", a->txt[i]);
        }
    }
    if (r->latch) {
        latch_down(r->latch);
    }
}

struct lookup_req {
    struct dns *d;
    const char *name;
    enum dns_rrtype type;
    struct res *r;
    struct dns_query *q;
};

static void
lookup_job(void *arg)
{
    struct lookup_req *req = arg;

    in_lookup = true;
    req->q = dns_lookup(req->d, req->name, req->type, res_cb, req->r);
    in_lookup = false;
}

/* One lookup on the loop; waits up to wait_ms for its answer. */
static void
lookup_wait(struct dns *d, const char *name, enum dns_rrtype type, struct res *r, unsigned wait_ms)
{
    struct latch l;
    struct lookup_req req = {d, name, type, r, NULL};

    memset(r, 0, sizeof(*r));
    latch_init(&l, 1);
    r->latch = &l;
    on_loop(lookup_job, &req);
    assert_non_null(req.q);
    assert_true(latch_wait(&l, wait_ms));
    r->latch = NULL;
    latch_destroy(&l);
    assert_int_equal(r->calls, 1);
    assert_false(r->reentered);
    assert_string_equal(r->qname, name);
    assert_int_equal(r->type, type);
}

static void
lookup(struct dns *d, const char *name, enum dns_rrtype type, struct res *r)
{
    lookup_wait(d, name, type, r, 10000);
}

/* Fresh answers carry the zone's TTL; a second may tick inside the resolver. */
static void
assert_ttl(uint32_t got, uint32_t want)
{
    if (got != want && got + 1 != want) {
        fail_msg("ttl %u, want %u", got, want);
    }
}

static void
assert_ip(const struct dns_addr *a, int family, const char *text)
{
    unsigned char want[16];

    assert_int_equal(a->family, family);
    assert_int_equal(inet_pton(family, text, want), 1);
    assert_memory_equal(a->addr, want, family == AF_INET ? 4 : 16);
}

/* ---- NSD ---- */

static char g_dir[64];      /* temporary directory of the test */
static char g_nsd_bin[256]; /* "" when NSD is not installed */
static unsigned g_nsd_port;
static pid_t g_nsd_pid;
static struct dns *g_dns; /* forwards to NSD */
static char g_long_txt[356];

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static bool
find_nsd(void)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"};

    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        (void)snprintf(g_nsd_bin, sizeof(g_nsd_bin), "%s/nsd", dirs[i]);
        if (access(g_nsd_bin, X_OK) == 0) {
            return true;
        }
    }
    g_nsd_bin[0] = '\0';
    return false;
}

/* A loopback port free for both UDP and TCP right now. */
static unsigned
free_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);
        int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
        unsigned port = 0;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(u, (struct sockaddr *)&sa, &len) == 0 &&
            bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            port = ntohs(sa.sin_port);
        }
        close(u);
        close(t);
        if (port) {
            return port;
        }
    }
    return 0;
}

/* A bound UDP socket that never answers: a silent DNS server. */
static int
silent_socket(unsigned *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void
write_zone(void)
{
    char path[128];
    char *zone;

    memset(g_long_txt, 'a', 255);
    memset(g_long_txt + 255, 'b', 100);
    g_long_txt[355] = '\0';
    zone = xasprintf("$ORIGIN example.test.\n"
                     "$TTL 3600\n"
                     "@ IN SOA ns hostmaster 1 3600 900 604800 300\n"
                     "@ IN NS ns\n"
                     "ns IN A 127.0.0.1\n"
                     "multi 600 IN MX 20 mx3\n"
                     "multi 600 IN MX 10 mx1\n"
                     "multi 600 IN MX 10 mx2\n"
                     "multi 600 IN MX 30 mx4.elsewhere.test.\n"
                     "mx1 IN A 192.0.2.1\n"
                     "mx1 IN AAAA 2001:db8::1\n"
                     "mx2 120 IN A 192.0.2.2\n"
                     "mx2 120 IN A 192.0.2.3\n"
                     "mx3 IN A 192.0.2.4\n"
                     "nomx 900 IN A 192.0.2.10\n"
                     "nullmx IN MX 0 .\n"
                     "alias 60 IN CNAME target\n"
                     "target 500 IN A 192.0.2.20\n"
                     "chain 30 IN CNAME alias\n"
                     "dangling IN CNAME nothere\n"
                     "longtxt IN TXT \"%.255s\" \"%s\"\n"
                     "longtxt IN TXT \"v=spf1 -all\"\n"
                     "*.wild 700 IN A 192.0.2.99\n",
                     g_long_txt, g_long_txt + 255);
    (void)snprintf(path, sizeof(path), "%s/example.test.zone", g_dir);
    write_file(path, zone);
    free(zone);
}

static void
write_nsd_conf(void)
{
    char path[128], *conf;

    conf = xasprintf("server:\n"
                     "    ip-address: 127.0.0.1@%u\n"
                     "    port: %u\n"
                     "    username: \"\"\n"
                     "    chroot: \"\"\n"
                     "    zonesdir: \"%s\"\n"
                     "    database: \"\"\n"
                     "    pidfile: \"%s/nsd.pid\"\n"
                     "    xfrdfile: \"%s/xfrd.state\"\n"
                     "    zonelistfile: \"%s/zone.list\"\n"
                     "    logfile: \"%s/nsd.log\"\n"
                     "    server-count: 1\n"
                     "remote-control:\n"
                     "    control-enable: no\n"
                     "zone:\n"
                     "    name: example.test\n"
                     "    zonefile: example.test.zone\n",
                     g_nsd_port, g_nsd_port, g_dir, g_dir, g_dir, g_dir, g_dir);
    (void)snprintf(path, sizeof(path), "%s/nsd.conf", g_dir);
    write_file(path, conf);
    free(conf);
}

/* True once NSD answers a SOA query for example.test on UDP. */
static bool
nsd_answers(void)
{
    static const unsigned char query[] = {
        0x12, 0x34, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 7,    'e',  'x',
        'a',  'm',  'p',  'l',  'e',  4,    't',  'e',  's',  't',  0,    0x00, 0x06, 0x00, 0x01};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_nsd_port)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    unsigned char reply[512];
    struct pollfd pfd = {fd, POLLIN, 0};
    bool ok = false;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && sendto(fd, query, sizeof(query), 0, (struct sockaddr *)&sa, sizeof(sa)) > 0 &&
        poll(&pfd, 1, 200) == 1) {
        ssize_t n = recv(fd, reply, sizeof(reply), 0);

        ok = n >= 12 && reply[0] == 0x12 && reply[1] == 0x34 && (reply[3] & 0x0f) == 0;
    }
    close(fd);
    return ok;
}

static bool
nsd_start(void)
{
    char conf[128], pidfile[128];
    pid_t child;
    int status;

    (void)snprintf(conf, sizeof(conf), "%s/nsd.conf", g_dir);
    (void)snprintf(pidfile, sizeof(pidfile), "%s/nsd.pid", g_dir);
    child = fork();
    if (child == 0) {
        execl(g_nsd_bin, "nsd", "-c", conf, "-P", pidfile, (char *)NULL);
        _exit(127);
    }
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        (void)fprintf(stderr, "test_dns: nsd failed to start (see %s/nsd.log)\n", g_dir);
        return false;
    }
    for (int i = 0; i < 100; i++) { /* it daemonizes: wait for the pid file and an answer */
        FILE *f = fopen(pidfile, "r");
        long pid = 0;

        if (f) {
            if (fscanf(f, "%ld", &pid) != 1) {
                pid = 0;
            }
            (void)fclose(f); /* read-only */
        }
        if (pid > 0 && nsd_answers()) {
            g_nsd_pid = (pid_t)pid;
            return true;
        }
        sleep_ms(50);
    }
    (void)fprintf(stderr, "test_dns: nsd does not answer (see %s/nsd.log)\n", g_dir);
    return false;
}

static void
nsd_stop(void)
{
    if (g_nsd_pid <= 0) {
        return;
    }
    (void)kill(g_nsd_pid, SIGTERM);
    for (int i = 0; i < 100 && kill(g_nsd_pid, 0) == 0; i++) {
        sleep_ms(20);
    }
    g_nsd_pid = 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- resolvers under test ---- */

struct new_req {
    const char *conf_text; /* written to a file first, unless NULL */
    const char *conf_path; /* else this path */
    unsigned timeout_ms;
    struct dns *d;
    struct buf why;
};

static const char *const test_zones[] = {"test.", NULL};

static void
new_job(void *arg)
{
    struct new_req *r = arg;
    struct dns_opts o = {r->conf_path, r->timeout_ms, test_zones};

    r->d = dns_new(g_loop, &o, &r->why);
}

/* A resolver on the loop from resolv.conf text; NULL with r->why on failure. */
static struct dns *
dns_make(const char *text, unsigned timeout_ms, struct buf *why)
{
    static unsigned seq;
    char path[128];
    struct new_req r = {.conf_text = text, .conf_path = path, .timeout_ms = timeout_ms};

    (void)snprintf(path, sizeof(path), "%s/resolv-%u.conf", g_dir, seq++);
    write_file(path, text);
    buf_init(&r.why, 4096);
    on_loop(new_job, &r);
    if (why) {
        buf_append_strv(why, buf_data(&r.why));
    }
    buf_release(&r.why);
    return r.d;
}

static void
free_job(void *arg)
{
    dns_free(arg);
}

static void
dns_drop(struct dns *d)
{
    on_loop(free_job, d);
}

/* A resolver forwarding to 127.0.0.1:port. */
static struct dns *
dns_make_ok(unsigned port, unsigned timeout_ms)
{
    char text[256];
    struct buf why;
    struct dns *d;

    (void)snprintf(text, sizeof(text), "# test resolver\nnameserver 127.0.0.1:%u\n", port);
    buf_init(&why, 4096);
    d = dns_make(text, timeout_ms, &why);
    if (d == NULL) {
        fail_msg("dns_new: %s", buf_data(&why).ptr);
    }
    buf_release(&why);
    return d;
}

static int
group_setup(void **state)
{
    int err = 0;

    (void)state;
    (void)snprintf(g_dir, sizeof(g_dir), "/tmp/celer-test-dns-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        return -1;
    }
    if (find_nsd()) {
        g_nsd_port = free_port();
        write_zone();
        write_nsd_conf();
        if (g_nsd_port == 0 || !nsd_start()) {
            return -1;
        }
    } else {
        (void)fprintf(stderr, "test_dns: nsd not installed (apt-get install nsd): "
                              "skipping the tests that need a DNS server\n");
    }
    /* started after NSD: fork only while single-threaded */
    g_group = loop_group_new(1, &err);
    if (g_group == NULL || loop_group_start(g_group) != 0) {
        return -1;
    }
    g_loop = loop_group_get(g_group, 0);
    if (g_nsd_bin[0]) {
        g_dns = dns_make_ok(g_nsd_port, 5000);
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (g_dns) {
        dns_drop(g_dns);
        g_dns = NULL;
    }
    loop_group_stop(g_group, NULL, NULL);
    loop_group_free(g_group);
    nsd_stop();
    (void)nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#define NEED_NSD()                                                                                 \
    do {                                                                                           \
        if (g_dns == NULL) {                                                                       \
            (void)fprintf(stderr, "test_dns: skipped: nsd not installed\n");                       \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- answers from NSD ---- */

static void
test_mx_sorted(void **state)
{
    struct res r;

    (void)state;
    NEED_NSD();
    lookup(g_dns, "multi.example.test", DNS_MX, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 4);
    assert_ttl(r.ttl, 600);
    assert_string_equal(r.why, "");
    assert_false(r.secure);
    assert_false(r.bogus);
    assert_int_equal(r.pref[0], 10);
    assert_int_equal(r.pref[1], 10);
    /* equal preferences: both, in the order the resolver gave them */
    assert_true(
        (strcmp(r.host[0], "mx1.example.test") == 0 &&
         strcmp(r.host[1], "mx2.example.test") == 0) ||
        (strcmp(r.host[0], "mx2.example.test") == 0 && strcmp(r.host[1], "mx1.example.test") == 0));
    assert_int_equal(r.pref[2], 20);
    assert_string_equal(r.host[2], "mx3.example.test");
    assert_int_equal(r.pref[3], 30);
    assert_string_equal(r.host[3], "mx4.elsewhere.test");
}

static void
test_addresses(void **state)
{
    struct res r;

    (void)state;
    NEED_NSD();
    lookup(g_dns, "mx1.example.test", DNS_A, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_ttl(r.ttl, 3600);
    assert_ip(&r.addrs[0], AF_INET, "192.0.2.1");

    lookup(g_dns, "MX1.Example.Test.", DNS_AAAA, &r); /* case and trailing dot do not matter */
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_ip(&r.addrs[0], AF_INET6, "2001:db8::1");

    lookup(g_dns, "mx2.example.test", DNS_A, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 2);
    assert_ttl(r.ttl, 120);
    assert_int_equal(r.addrs[0].family, AF_INET);
    assert_int_equal(r.addrs[1].family, AF_INET);
    assert_true(r.addrs[0].addr[3] + r.addrs[1].addr[3] == 2 + 3 &&
                r.addrs[0].addr[3] != r.addrs[1].addr[3]);

    lookup(g_dns, "mx2.example.test", DNS_AAAA, &r);
    assert_int_equal(r.status, DNS_NODATA);
    assert_int_equal(r.n, 0);
    assert_ttl(r.ttl, 300);
    assert_string_equal(r.why, "no AAAA records");
}

static void
test_no_mx_and_null_mx(void **state)
{
    struct res r;

    (void)state;
    NEED_NSD();
    lookup(g_dns, "nomx.example.test", DNS_MX, &r); /* implicit MX is the caller's business */
    assert_int_equal(r.status, DNS_NODATA);
    assert_int_equal(r.n, 0);
    assert_ttl(r.ttl, 300); /* min(SOA TTL 3600, minimum 300) */
    lookup(g_dns, "nomx.example.test", DNS_A, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_ttl(r.ttl, 900);
    assert_ip(&r.addrs[0], AF_INET, "192.0.2.10");

    lookup(g_dns, "nullmx.example.test", DNS_MX, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.pref[0], 0);
    assert_string_equal(r.host[0], "");
    assert_ttl(r.ttl, 3600);
}

static void
test_cname(void **state)
{
    struct res r;

    (void)state;
    NEED_NSD();
    lookup(g_dns, "alias.example.test", DNS_A, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_ip(&r.addrs[0], AF_INET, "192.0.2.20");
    assert_ttl(r.ttl, 60); /* the CNAME's TTL is the smallest */

    lookup(g_dns, "chain.example.test", DNS_A, &r); /* chain -> alias -> target */
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_ip(&r.addrs[0], AF_INET, "192.0.2.20");
    assert_ttl(r.ttl, 30);

    lookup(g_dns, "target.example.test", DNS_A, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_ttl(r.ttl, 500);

    lookup(g_dns, "dangling.example.test", DNS_A, &r); /* CNAME to a name that is not there */
    assert_int_equal(r.status, DNS_NXDOMAIN);
    assert_int_equal(r.n, 0);
}

static void
test_long_txt(void **state)
{
    struct res r;
    int lng;

    (void)state;
    NEED_NSD();
    lookup(g_dns, "longtxt.example.test", DNS_TXT, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_int_equal(r.n, 2);
    assert_ttl(r.ttl, 3600);
    lng = r.txt_len[0] == 355 ? 0 : 1;
    assert_int_equal(r.txt_len[lng], 355); /* 255 + 100 octets in two strings */
    assert_string_equal(r.txt[lng], g_long_txt);
    assert_int_equal(r.txt_len[1 - lng], 11);
    assert_string_equal(r.txt[1 - lng], "v=spf1 -all");
}

static void
test_nxdomain(void **state)
{
    struct res r;

    (void)state;
    NEED_NSD();
    lookup(g_dns, "nope.example.test", DNS_MX, &r);
    assert_int_equal(r.status, DNS_NXDOMAIN);
    assert_int_equal(r.n, 0);
    assert_ttl(r.ttl, 300);
    assert_string_equal(r.why, "no such domain");
    assert_false(dns_status_temporary(r.status));

    lookup(g_dns, "deeper.nope.example.test", DNS_A, &r);
    assert_int_equal(r.status, DNS_NXDOMAIN);

    lookup(g_dns, "a..b.example.test", DNS_A, &r); /* never asked: answered later, not inline */
    assert_int_equal(r.status, DNS_NXDOMAIN);
    assert_string_equal(r.why, "invalid domain name");
    lookup(g_dns, "", DNS_MX, &r);
    assert_int_equal(r.status, DNS_NXDOMAIN);
}

static void
test_wildcard(void **state)
{
    struct res r;

    (void)state;
    NEED_NSD();
    lookup(g_dns, "anything.wild.example.test", DNS_A, &r);
    assert_int_equal(r.status, DNS_OK);
    assert_ip(&r.addrs[0], AF_INET, "192.0.2.99");
    assert_ttl(r.ttl, 700);
}

/* ---- temporary failures ---- */

static void
test_servfail_refused(void **state)
{
    struct res r;
    uint64_t t0;

    (void)state;
    NEED_NSD();
    t0 = clock_mono_ms();
    lookup(g_dns, "example.org", DNS_MX, &r); /* NSD refuses: not its zone */
    assert_int_equal(r.status, DNS_SERVFAIL);
    assert_true(dns_status_temporary(r.status));
    assert_int_equal(r.n, 0);
    assert_true(r.at_ms - t0 < 5000);
    assert_non_null(strstr(r.why, "SERVFAIL from 127.0.0.1@"));
}

/* A server that never answers (or a port where nothing listens). */
static void
check_unanswered(struct dns *d, const char *name, unsigned timeout_ms)
{
    struct res r;
    uint64_t t0 = clock_mono_ms(), took;

    lookup_wait(d, name, DNS_A, &r, timeout_ms + 5000);
    took = r.at_ms - t0;
    (void)fprintf(stderr, "test_dns: %s: %s (%s) after %llu ms\n", name, dns_status_name(r.status),
                  r.why, (unsigned long long)took);
    assert_true(dns_status_temporary(r.status));
    assert_true(took <= timeout_ms + 1000);
    if (r.status == DNS_TIMEOUT) {
        char want[64];

        (void)snprintf(want, sizeof(want), "timeout after %u ms", timeout_ms);
        assert_string_equal(r.why, want);
        assert_true(took + 50 >= timeout_ms);
    }
}

static void
test_timeout(void **state)
{
    unsigned port;
    int fd = silent_socket(&port);
    struct dns *d;

    (void)state;
    d = dns_make_ok(port, 1500);
    check_unanswered(d, "slow.example.test", 1500);
    dns_drop(d);
    close(fd);

    port = free_port(); /* nothing listens there */
    d = dns_make_ok(port, 1500);
    check_unanswered(d, "closed.example.test", 1500);
    dns_drop(d);
}

/* ---- cancelling and freeing ---- */

struct cancel_ctx {
    struct dns *d;
    struct dns *silent;
    struct res r[4];
    struct dns_query *q[4];
    struct latch done;
};

static void
cancel_start(void *arg)
{
    struct cancel_ctx *c = arg;

    in_lookup = true;
    c->q[0] = dns_lookup(c->d, "mx3.example.test", DNS_A, res_cb, &c->r[0]);
    c->q[1] = dns_lookup(c->d, "bad..name", DNS_A, res_cb, &c->r[1]);           /* early answer */
    c->q[2] = dns_lookup(c->silent, "x.example.test", DNS_A, res_cb, &c->r[2]); /* would time out */
    c->q[3] = dns_lookup(c->d, "mx1.example.test", DNS_MX, res_cb, &c->r[3]);
    in_lookup = false;
    dns_cancel(c->q[0]);
    dns_cancel(c->q[1]);
    dns_cancel(c->q[2]);
    dns_cancel(NULL);
}

static void
test_cancel(void **state)
{
    struct cancel_ctx c;
    unsigned port;
    int fd;
    struct dns_stats st;

    (void)state;
    NEED_NSD();
    fd = silent_socket(&port);
    memset(&c, 0, sizeof(c));
    c.d = g_dns;
    c.silent = dns_make_ok(port, 300);
    latch_init(&c.done, 1);
    c.r[3].latch = &c.done;
    on_loop(cancel_start, &c);
    assert_true(latch_wait(&c.done, 10000));
    sleep_ms(600); /* past the silent resolver's deadline */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c.r[i].calls, 0);
    }
    assert_int_equal(c.r[3].calls, 1);
    assert_int_equal(c.r[3].status, DNS_NODATA);
    dns_get_stats(c.silent, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.failures, 0);
    dns_drop(c.silent);
    close(fd);
    latch_destroy(&c.done);
}

/* A's callback cancels B (still waiting on a silent server), then starts and cancels C. */
struct in_cb_ctx {
    struct dns *silent;
    struct dns_query *b;
    struct res ra, rb, rc;
    bool cancelled_self_ok;
    struct dns_query *a;
    struct latch done;
};

static void
in_cb_a(const struct dns_answer *ans, void *arg)
{
    struct in_cb_ctx *c = arg;
    struct dns_query *q;

    res_cb(ans, &c->ra);
    dns_cancel(c->b);
    q = dns_lookup(c->silent, "c.example.test", DNS_A, res_cb, &c->rc);
    dns_cancel(q);
    dns_cancel(c->a); /* its own query: a no-op */
    c->cancelled_self_ok = true;
    latch_down(&c->done);
}

static void
in_cb_start(void *arg)
{
    struct in_cb_ctx *c = arg;

    c->b = dns_lookup(c->silent, "b.example.test", DNS_A, res_cb, &c->rb);
    c->a = dns_lookup(g_dns, "mx3.example.test", DNS_MX, in_cb_a, c);
}

static void
test_cancel_in_callback(void **state)
{
    struct in_cb_ctx c;
    unsigned port;
    int fd;

    (void)state;
    NEED_NSD();
    fd = silent_socket(&port);
    memset(&c, 0, sizeof(c));
    c.silent = dns_make_ok(port, 400);
    latch_init(&c.done, 1);
    on_loop(in_cb_start, &c);
    assert_true(latch_wait(&c.done, 10000));
    sleep_ms(700);
    assert_int_equal(c.ra.calls, 1);
    assert_int_equal(c.ra.status, DNS_NODATA);
    assert_true(c.cancelled_self_ok);
    assert_int_equal(c.rb.calls, 0);
    assert_int_equal(c.rc.calls, 0);
    dns_drop(c.silent);
    close(fd);
    latch_destroy(&c.done);
}

enum { MANY = 200 };

struct many_ctx {
    struct dns *d;
    struct res r[MANY];
    char names[MANY][64];
    struct latch done;
};

static void
many_start(void *arg)
{
    struct many_ctx *m = arg;

    in_lookup = true;
    for (int i = 0; i < MANY; i++) {
        enum dns_rrtype t = i % 2 ? DNS_A : DNS_MX;

        (void)snprintf(m->names[i], sizeof(m->names[i]), "host%d.wild.example.test", i);
        m->r[i].latch = &m->done;
        if (dns_lookup(m->d, m->names[i], t, res_cb, &m->r[i]) == NULL) {
            m->r[i].calls = -1000;
        }
    }
    in_lookup = false;
}

static void
test_many_concurrent(void **state)
{
    struct many_ctx *m;
    struct dns_stats st;
    struct dns *d;

    (void)state;
    NEED_NSD();
    m = calloc(1, sizeof(*m));
    assert_non_null(m);
    d = dns_make_ok(g_nsd_port, 8000);
    m->d = d;
    latch_init(&m->done, MANY);
    on_loop(many_start, m);
    assert_true(latch_wait(&m->done, 15000));
    sleep_ms(100); /* nothing more may come */
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(m->r[i].calls, 1);
        assert_false(m->r[i].reentered);
        assert_string_equal(m->r[i].qname, m->names[i]);
        if (i % 2) {
            assert_int_equal(m->r[i].status, DNS_OK);
            assert_ip(&m->r[i].addrs[0], AF_INET, "192.0.2.99");
        } else {
            assert_int_equal(m->r[i].status, DNS_NODATA);
        }
    }
    dns_get_stats(d, &st);
    assert_int_equal(st.queries, MANY);
    assert_int_equal(st.mx_queries, MANY / 2);
    assert_int_equal(st.a_queries, MANY / 2);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.failures, 0);
    dns_drop(d);
    latch_destroy(&m->done);
    free(m);
}

struct free_ctx {
    struct dns *d, *silent;
    struct res r[41];
    int started;
};

static void
free_start(void *arg)
{
    struct free_ctx *f = arg;

    freed_already = false;
    for (int i = 0; i < 20; i++) {
        char name[64];

        (void)snprintf(name, sizeof(name), "free%d.wild.example.test", i);
        (void)dns_lookup(f->d, name, DNS_A, res_cb, &f->r[i]);
        (void)dns_lookup(f->silent, name, DNS_MX, res_cb, &f->r[20 + i]);
        f->started += 2;
    }
    (void)dns_lookup(f->d, "bad..name", DNS_A, res_cb, &f->r[40]); /* early answer pending */
}

static void
free_now(void *arg)
{
    struct free_ctx *f = arg;

    dns_free(f->d);
    dns_free(f->silent);
    freed_already = true;
}

static void
start_and_free(void *arg)
{
    free_start(arg);
    free_now(arg);
}

static void
test_free_pending(void **state)
{
    struct free_ctx f;
    unsigned port;
    int fd;

    (void)state;
    NEED_NSD();
    fd = silent_socket(&port);
    memset(&f, 0, sizeof(f));
    /* freed in the same loop turn as the lookups */
    f.d = dns_make_ok(g_nsd_port, 300);
    f.silent = dns_make_ok(port, 300);
    on_loop(start_and_free, &f);
    sleep_ms(500);
    for (int i = 0; i < 41; i++) {
        assert_false(f.r[i].after_free);
        assert_int_equal(f.r[i].calls, 0);
    }

    /* freed a little later: some answers may have come, none after the free */
    memset(&f, 0, sizeof(f));
    f.d = dns_make_ok(g_nsd_port, 300);
    f.silent = dns_make_ok(port, 300);
    on_loop(free_start, &f);
    sleep_ms(5);
    on_loop(free_now, &f);
    sleep_ms(500);
    for (int i = 0; i < 41; i++) {
        assert_false(f.r[i].after_free);
        assert_true(f.r[i].calls <= 1);
    }
    close(fd);
}

/* The first answer's callback frees the resolver; no other callback runs. */
struct free_cb_ctx {
    struct dns *d;
    int calls;
    struct latch first;
};

struct free_cb_slot {
    struct free_cb_ctx *f;
    struct res r;
};

static void
free_cb(const struct dns_answer *a, void *arg)
{
    struct free_cb_slot *s = arg;

    res_cb(a, &s->r);
    if (s->f->calls++ == 0) {
        dns_free(s->f->d);
        freed_already = true;
        latch_down(&s->f->first);
    }
}

static void
free_cb_start(void *arg)
{
    struct free_cb_slot *slots = arg;

    freed_already = false;
    for (int i = 0; i < 20; i++) {
        char name[64];

        (void)snprintf(name, sizeof(name), "cbfree%d.wild.example.test", i);
        (void)dns_lookup(slots[0].f->d, name, i % 3 ? DNS_A : DNS_AAAA, free_cb, &slots[i]);
    }
}

static void
test_free_in_callback(void **state)
{
    struct free_cb_ctx f;
    struct free_cb_slot slots[20];

    (void)state;
    NEED_NSD();
    memset(&f, 0, sizeof(f));
    memset(slots, 0, sizeof(slots));
    f.d = dns_make_ok(g_nsd_port, 3000);
    latch_init(&f.first, 1);
    for (int i = 0; i < 20; i++) {
        slots[i].f = &f;
    }
    on_loop(free_cb_start, slots);
    assert_true(latch_wait(&f.first, 10000));
    sleep_ms(300);
    assert_int_equal(f.calls, 1);
    for (int i = 0; i < 20; i++) {
        assert_false(slots[i].r.after_free);
    }
    latch_destroy(&f.first);
}

static void
test_stats_and_names(void **state)
{
    struct dns *d;
    struct dns_stats st;
    struct res r;

    (void)state;
    NEED_NSD();
    d = dns_make_ok(g_nsd_port, 5000);
    lookup(d, "multi.example.test", DNS_MX, &r);
    lookup(d, "mx1.example.test", DNS_AAAA, &r);
    lookup(d, "longtxt.example.test", DNS_TXT, &r);
    lookup(d, "example.org", DNS_A, &r);
    dns_get_stats(d, &st);
    assert_int_equal(st.queries, 4);
    assert_int_equal(st.mx_queries, 1);
    assert_int_equal(st.a_queries, 2);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.failures, 1);
    dns_drop(d);
    assert_string_equal(dns_status_name(DNS_TIMEOUT), "timeout");
    assert_string_equal(dns_rrtype_name(DNS_TLSA), "TLSA");
    assert_false(dns_status_temporary(DNS_NODATA));
}

/* ---- configuration ---- */

static void
test_dns_new_config(void **state)
{
    struct buf why;
    struct dns *d;
    char path[160];

    (void)state;
    buf_init(&why, 4096);
    d = dns_make("search example.test\nnameserver 127.0.0.1:53\nnameserver 127.0.0.1:99999\n", 0,
                 &why);
    assert_null(d);
    assert_non_null(strstr(buf_data(&why).ptr, ".conf:3: nameserver: bad port"));

    buf_reset(&why);
    (void)snprintf(path, sizeof(path), "%s/does-not-exist.conf", g_dir);
    {
        struct new_req r = {.conf_path = path};

        buf_init(&r.why, 4096);
        on_loop(new_job, &r);
        assert_null(r.d);
        assert_non_null(strstr(buf_data(&r.why).ptr, "cannot open"));
        buf_release(&r.why);
    }

    /* no nameserver line: recursion from the root hints (nothing is asked here) */
    buf_reset(&why);
    d = dns_make("# empty\noptions ndots:1\n", 0, &why);
    assert_non_null(d);
    dns_drop(d);

    /* IPv6 forwarders with ports are accepted by libunbound */
    d = dns_make("nameserver [::1]:5353\nnameserver ::1\nnameserver 127.0.0.1\n", 0, &why);
    assert_non_null(d);
    dns_drop(d);
    buf_release(&why);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_new_config),
        cmocka_unit_test(test_mx_sorted),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_no_mx_and_null_mx),
        cmocka_unit_test(test_cname),
        cmocka_unit_test(test_long_txt),
        cmocka_unit_test(test_nxdomain),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_servfail_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_in_callback),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_free_pending),
        cmocka_unit_test(test_free_in_callback),
        cmocka_unit_test(test_stats_and_names),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
