/*
 * test_dns_resolvconf: the resolv.conf parser behind net/dns. Servers come
 * out in file order as the "ip@port" strings libunbound takes (port 53
 * unless given, IPv6 in brackets for a port, %scope kept); comments and
 * the keywords a stub resolver ignores are skipped; every bad line is an
 * error naming file:line and the offending text (escaped).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/dns_resolvconf.h"

struct rc_case {
    const char *text;
    int n;              /* servers expected, or -1 for an error */
    const char *fwd[3]; /* their ub_ctx_set_fwd() strings */
    const char *err;    /* a part of the error */
};

static void
test_resolvconf_parse(void **state)
{
    static const struct rc_case cases[] = {
        {"", 0, {NULL}, NULL},
        {"nameserver 192.0.2.1\n", 1, {"192.0.2.1@53"}, NULL},
        {"nameserver 127.0.0.1:5353", 1, {"127.0.0.1@5353"}, NULL},
        {"nameserver ::1\n", 1, {"::1@53"}, NULL},
        {"nameserver [::1]:5353\n", 1, {"::1@5353"}, NULL},
        {"nameserver [2001:db8::1]\n", 1, {"2001:db8::1@53"}, NULL},
        {"nameserver fe80::1%eth0\n", 1, {"fe80::1%eth0@53"}, NULL},
        {"nameserver [fe80::1%lo]:54\n", 1, {"fe80::1%lo@54"}, NULL},
        {"# comment\n; another\n\n  \t\nsearch a.test b.test\ndomain a.test\noptions ndots:2 "
         "timeout:1\nsortlist 10.0.0.0/8\n  nameserver\t10.0.0.1  # the first\r\n"
         "nameserver 10.0.0.2;x\nnameserver 10.0.0.3",
         3,
         {"10.0.0.1@53", "10.0.0.2@53", "10.0.0.3@53"},
         NULL},
        {"nameserver 300.1.1.1\n",
         -1,
         {NULL},
         "t.conf:1: nameserver: not an IP address: '300.1.1.1'"},
        {"\n\nnameserver 127.0.0.1:0\n", -1, {NULL}, "t.conf:3: nameserver: bad port"},
        {"nameserver 127.0.0.1:65536\n", -1, {NULL}, "t.conf:1: nameserver: bad port"},
        {"nameserver 127.0.0.1:\n", -1, {NULL}, "t.conf:1: nameserver: missing port"},
        {"nameserver 127.0.0.1:x53\n", -1, {NULL}, "bad port"},
        {"nameserver [::1\n", -1, {NULL}, "t.conf:1: nameserver: missing ']'"},
        {"nameserver [::1]53\n", -1, {NULL}, "unexpected text after ']'"},
        {"nameserver [::1]:\n", -1, {NULL}, "missing port"},
        {"nameserver ::1:5353:x\n", -1, {NULL}, "not an IP address"},
        {"nameserver 192.0.2.1%eth0\n", -1, {NULL}, "not an IP address"},
        {"nameserver dns.example.test\n", -1, {NULL}, "not an IP address"},
        {"nameserver\n", -1, {NULL}, "t.conf:1: nameserver: missing address"},
        {"nameserver 192.0.2.1 192.0.2.2\n", -1, {NULL}, "unexpected text after the address"},
        {"nameserver 192.0.2.1\nnameservr 192.0.2.2\n",
         -1,
         {NULL},
         "t.conf:2: unknown keyword 'nameservr'"},
        {"nameserver 1.2.3.4\x01\n", -1, {NULL}, "'1.2.3.4\\x01'"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const struct rc_case *c = &cases[i];
        struct dns_resolvconf rc;
        struct buf why;
        int err;

        buf_init(&why, 4096);
        err = dns_resolvconf_parse(strv_from_cstr(c->text), "t.conf", &rc, &why);
        if (c->n < 0) {
            if (err != CELER_EPARSE || strstr(buf_data(&why).ptr, c->err) == NULL) {
                fail_msg("case %zu: err %d why '%s', want '%s'", i, err, buf_data(&why).ptr,
                         c->err);
            }
            assert_int_equal(rc.n, 0);
            assert_null(rc.servers);
        } else {
            if (err != 0) {
                fail_msg("case %zu: %s", i, buf_data(&why).ptr);
            }
            assert_int_equal(rc.n, c->n);
            for (int k = 0; k < c->n; k++) {
                assert_string_equal(rc.servers[k].fwd, c->fwd[k]);
            }
        }
        if (i == 4) {
            unsigned char lo6[16] = {0};

            lo6[15] = 1;
            assert_int_equal(rc.servers[0].family, AF_INET6);
            assert_memory_equal(rc.servers[0].addr, lo6, 16);
            assert_int_equal(rc.servers[0].port, 5353);
        }
        dns_resolvconf_release(&rc);
        buf_release(&why);
    }
}

static void
test_resolvconf_load(void **state)
{
    char dir[] = "/tmp/celer-test-resolvconf-XXXXXX", path[64];
    struct dns_resolvconf rc;
    struct buf why;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    (void)snprintf(path, sizeof(path), "%s/resolv.conf", dir);
    buf_init(&why, 4096);
    assert_int_equal(dns_resolvconf_load(path, &rc, &why), -ENOENT);
    assert_non_null(strstr(buf_data(&why).ptr, "cannot open"));
    assert_int_equal(rc.n, 0);

    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("nameserver 192.0.2.53\nnameserver [2001:db8::53]:5353\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    buf_reset(&why);
    assert_int_equal(dns_resolvconf_load(path, &rc, &why), 0);
    assert_int_equal(rc.n, 2);
    assert_string_equal(rc.servers[0].fwd, "192.0.2.53@53");
    assert_string_equal(rc.servers[1].fwd, "2001:db8::53@5353");
    dns_resolvconf_release(&rc);
    dns_resolvconf_release(NULL);

    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs("nameserver 192.0.2.53\n\nnameserver 192.0.2.530\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    buf_reset(&why);
    assert_int_equal(dns_resolvconf_load(path, &rc, &why), CELER_EPARSE);
    assert_non_null(strstr(buf_data(&why).ptr, "resolv.conf:3: nameserver: not an IP address"));
    assert_int_equal(rc.n, 0);

    buf_release(&why);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolvconf_parse),
        cmocka_unit_test(test_resolvconf_load),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
