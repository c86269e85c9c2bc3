/*
 * test_dns_answer: DNS response packets (built with ldns) turned into
 * struct dns_answer. MX sorted by preference, stably, hosts lower-case
 * without the trailing dot, a null MX as host ""; CNAME chains followed from
 * the query name with the smallest TTL of the chain, unrelated records
 * ignored; TXT strings concatenated; PTR and TLSA; negative TTLs from the
 * authority SOA; rcodes to statuses; malformed and truncated packets
 * rejected cleanly.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "net/dns_answer.h"

static const char *const soa[] = {"test. 3600 IN SOA ns.test. h.test. 1 3600 900 604800 120", NULL};
static const char *const chain[] = {"b.test. 50 IN CNAME c.test.", "a.test. 100 IN CNAME b.test.",
                                    "c.test. 200 IN A 192.0.2.7", "x.test. 1 IN A 192.0.2.66",
                                    NULL};

/* A response to (qname, qt) with rcode and the records given in presentation form. */
static uint8_t *
make_pkt(const char *qname, ldns_rr_type qt, uint8_t rcode, const char *const *answer,
         const char *const *authority, size_t *len)
{
    ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(qname), qt, LDNS_RR_CLASS_IN, LDNS_RD);
    uint8_t *wire = NULL;

    assert_non_null(p);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_rcode(p, rcode);
    for (int s = 0; s < 2; s++) {
        const char *const *list = s ? authority : answer;

        for (size_t i = 0; list && list[i]; i++) {
            ldns_rr *rr = NULL;

            assert_int_equal(ldns_rr_new_frm_str(&rr, list[i], 3600, NULL, NULL), LDNS_STATUS_OK);
            assert_true(ldns_pkt_push_rr(p, s ? LDNS_SECTION_AUTHORITY : LDNS_SECTION_ANSWER, rr));
        }
    }
    assert_int_equal(ldns_pkt2wire(&wire, p, len), LDNS_STATUS_OK);
    ldns_pkt_free(p);
    return wire;
}

static void
parse_ok(const char *qname, ldns_rr_type qt, uint8_t rcode, const char *const *answer,
         const char *const *authority, enum dns_rrtype type, struct dns_answer *a)
{
    size_t len;
    uint8_t *wire = make_pkt(qname, qt, rcode, answer, authority, &len);

    assert_int_equal(dns_answer_parse(wire, len, qname, type, a), 0);
    assert_int_equal(a->type, type);
    free(wire);
}

static void
assert_ip(const struct dns_addr *a, int family, const char *text)
{
    unsigned char want[16];

    assert_int_equal(a->family, family);
    assert_int_equal(inet_pton(family, text, want), 1);
    assert_memory_equal(a->addr, want, family == AF_INET ? 4 : 16);
}

static void
test_mx(void **state)
{
    static const char *const mx[] = {"d.test. 300 IN MX 20 c.test.",
                                     "d.test. 300 IN MX 10 B.Test.",
                                     "d.test. 300 IN MX 10 a.test.",
                                     "d.test. 300 IN MX 10 z.test.",
                                     "other.test. 5 IN MX 1 evil.test.", /* not ours: ignored */
                                     "d.test. 300 IN A 192.0.2.1",       /* other type: ignored */
                                     "d.test. 300 CH MX 1 chaos.test.",  /* other class: ignored */
                                     NULL};
    static const char *const nullmx[] = {"n.test. 60 IN MX 0 .", NULL};
    static const char *const odd[] = {"o.test. 60 IN MX 7 A\\.B\\032c.Test.", NULL};
    struct dns_answer a;

    (void)state;
    parse_ok("d.test", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, mx, NULL, DNS_MX, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_null(a.why);
    assert_int_equal(a.n, 4);
    assert_int_equal(a.ttl, 300);
    assert_int_equal(a.mx[0].pref, 10); /* stable: b, a, z as in the packet */
    assert_string_equal(a.mx[0].host, "b.test");
    assert_int_equal(a.mx[1].pref, 10);
    assert_string_equal(a.mx[1].host, "a.test");
    assert_int_equal(a.mx[2].pref, 10);
    assert_string_equal(a.mx[2].host, "z.test");
    assert_int_equal(a.mx[3].pref, 20);
    assert_string_equal(a.mx[3].host, "c.test");
    assert_null(a.addrs);
    dns_answer_release(&a);
    assert_null(a.mx);
    assert_int_equal(a.n, 0);

    parse_ok("n.test.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, nullmx, NULL, DNS_MX, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.mx[0].pref, 0);
    assert_string_equal(a.mx[0].host, "");
    assert_int_equal(a.ttl, 60);
    dns_answer_release(&a);

    parse_ok("o.test", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, odd, NULL, DNS_MX, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.mx[0].host, "a\\.b\\032c.test"); /* escapes kept, never raw */
    dns_answer_release(&a);
}

static void
test_cname_chain(void **state)
{
    static const char *const loop[] = {"l1.test. 9 IN CNAME l2.test.",
                                       "l2.test. 9 IN CNAME l1.test.", NULL};
    static const char *const v6[] = {"A.test. 30 IN CNAME six.test.",
                                     "six.test. 40 IN AAAA 2001:db8::6", NULL};
    struct dns_answer a;

    (void)state;
    parse_ok("a.test", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, chain, NULL, DNS_A, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 1); /* x.test's record is not in the chain */
    assert_int_equal(a.ttl, 50);
    assert_ip(&a.addrs[0], AF_INET, "192.0.2.7");
    dns_answer_release(&a);

    parse_ok("a.test", LDNS_RR_TYPE_AAAA, LDNS_RCODE_NOERROR, v6, NULL, DNS_AAAA, &a);
    assert_int_equal(a.status, DNS_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.ttl, 30);
    assert_ip(&a.addrs[0], AF_INET6, "2001:db8::6");
    dns_answer_release(&a);

    parse_ok("l1.test", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, loop, soa, DNS_A, &a);
    assert_int_equal(a.status, DNS_NODATA); /* a CNAME loop ends, with nothing */
    assert_int_equal(a.ttl, 120);
    assert_null(a.addrs);
    dns_answer_release(&a);

    /* qname NULL: start from the question's name */
    {
        size_t len;
        uint8_t *wire = make_pkt("a.test", LDNS_RR_TYPE_A, 0, chain, NULL, &len);

        assert_int_equal(dns_answer_parse(wire, len, NULL, DNS_A, &a), 0);
        assert_int_equal(a.n, 1);
        dns_answer_release(&a);
        free(wire);
    }
}

static void
test_txt_ptr_tlsa(void **state)
{
    static const char *const txt[] = {"t.test. 77 IN TXT \"v=DKIM1; \" \"k=rsa; p=AB\"", NULL};
    static const char *const ptr[] = {"1.2.0.192.in-addr.arpa. 10 IN PTR Host.Example.Test.", NULL};
    static const char *const tlsa[] = {
        "_25._tcp.mx.test. 10 IN TLSA 3 1 1 "
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        NULL};
    struct dns_answer a;

    (void)state;
    parse_ok("t.test", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR, txt, NULL, DNS_TXT, &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.txt[0], "v=DKIM1; k=rsa; p=AB");
    assert_int_equal(a.txt_len[0], 20);
    assert_int_equal(a.ttl, 77);
    dns_answer_release(&a);

    parse_ok("1.2.0.192.in-addr.arpa", LDNS_RR_TYPE_PTR, LDNS_RCODE_NOERROR, ptr, NULL, DNS_PTR,
             &a);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.names[0], "host.example.test");
    dns_answer_release(&a);

    parse_ok("_25._tcp.mx.test", LDNS_RR_TYPE_TLSA, LDNS_RCODE_NOERROR, tlsa, NULL, DNS_TLSA, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.tlsa[0].usage, 3);
    assert_int_equal(a.tlsa[0].selector, 1);
    assert_int_equal(a.tlsa[0].mtype, 1);
    assert_int_equal(a.tlsa[0].len, 32);
    assert_int_equal(a.tlsa[0].data[0], 0x01);
    assert_int_equal(a.tlsa[0].data[31], 0x20);
    dns_answer_release(&a);
}

static void
test_negative_and_rcodes(void **state)
{
    static const char *const soa_low_ttl[] = {
        "test. 60 IN SOA ns.test. h.test. 1 3600 900 604800 120", NULL};
    struct dns_answer a;

    (void)state;
    parse_ok("gone.test", LDNS_RR_TYPE_MX, LDNS_RCODE_NXDOMAIN, NULL, soa, DNS_MX, &a);
    assert_int_equal(a.status, DNS_NXDOMAIN);
    assert_int_equal(a.ttl, 120); /* min(3600, minimum 120) */
    assert_int_equal(a.n, 0);
    dns_answer_release(&a);

    parse_ok("gone.test", LDNS_RR_TYPE_MX, LDNS_RCODE_NXDOMAIN, NULL, soa_low_ttl, DNS_MX, &a);
    assert_int_equal(a.ttl, 60); /* min(60, minimum 120) */
    dns_answer_release(&a);

    parse_ok("gone.test", LDNS_RR_TYPE_MX, LDNS_RCODE_NXDOMAIN, NULL, NULL, DNS_MX, &a);
    assert_int_equal(a.ttl, 0); /* no SOA: nothing to cache by */
    dns_answer_release(&a);

    parse_ok("a.test", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, chain, soa, DNS_MX, &a);
    assert_int_equal(a.status, DNS_NODATA); /* the chain's end has no MX */
    assert_int_equal(a.ttl, 120);
    assert_null(a.mx);
    dns_answer_release(&a);

    parse_ok("r.test", LDNS_RR_TYPE_A, LDNS_RCODE_REFUSED, NULL, NULL, DNS_A, &a);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_string_equal(a.why, "REFUSED");
    assert_int_equal(a.ttl, 0);
    dns_answer_release(&a);

    parse_ok("s.test", LDNS_RR_TYPE_A, LDNS_RCODE_SERVFAIL, chain, NULL, DNS_A, &a);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_string_equal(a.why, "SERVFAIL");
    assert_int_equal(a.n, 0);
    dns_answer_release(&a);
}

static void
test_malformed(void **state)
{
    unsigned char junk[40] = {0x12, 0x34, 0x81, 0x80, 0x00, 0xff}; /* 255 questions: not there */
    struct dns_answer a;
    size_t len;
    uint8_t *wire = make_pkt("a.test", LDNS_RR_TYPE_A, 0, chain, NULL, &len);

    (void)state;
    for (size_t cut = 0; cut < len; cut++) { /* every truncation fails cleanly or parses */
        int err = dns_answer_parse(wire, cut, "a.test", DNS_A, &a);

        assert_true(err == 0 || (err == CELER_EPARSE && a.status == DNS_SERVFAIL && a.n == 0));
        dns_answer_release(&a);
    }
    assert_int_equal(dns_answer_parse(wire, len, "bad..name", DNS_A, &a), CELER_EPARSE);
    assert_string_equal(a.why, "invalid query name");
    dns_answer_release(&a);
    free(wire);

    assert_int_equal(dns_answer_parse(junk, sizeof(junk), "x.test", DNS_A, &a), CELER_EPARSE);
    assert_int_equal(a.status, DNS_SERVFAIL);
    assert_string_equal(a.why, "malformed answer");
    dns_answer_release(&a);
    assert_int_equal(dns_answer_parse(NULL, 0, "x.test", DNS_A, &a), CELER_EPARSE);
    dns_answer_release(&a);
    dns_answer_release(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mx),           cmocka_unit_test(test_cname_chain),
        cmocka_unit_test(test_txt_ptr_tlsa), cmocka_unit_test(test_negative_and_rcodes),
        cmocka_unit_test(test_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
