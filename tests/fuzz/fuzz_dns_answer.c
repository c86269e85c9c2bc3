/*
 * fuzz_dns_answer: the DNS answer parser (net/dns_answer).
 *
 * Input: one selector byte (the asked type: A, MX, TXT, AAAA, PTR, TLSA by
 * value modulo 6), then a response packet in wire format. The packet is
 * parsed twice: from its own question name (qname NULL) and for a fixed
 * name. Every result must be consistent: a failure is DNS_SERVFAIL with a
 * reason and no records; DNS_OK has records in the array of its type and
 * no other; MX are sorted by preference with lower-case hosts without a
 * trailing dot; addresses have the family of the type; TXT lengths match
 * their NUL-terminated copies. Any violation aborts; ASan catches the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/dns_answer.h"
#include "fuzzkit.h"

static const enum dns_rrtype types[] = {DNS_A, DNS_MX, DNS_TXT, DNS_AAAA, DNS_PTR, DNS_TLSA};

static void
check_name(const char *s)
{
    size_t len = strlen(s);

    CHECK(len == 0 || s[len - 1] != '.' || (len >= 2 && s[len - 2] == '\\'));
    for (size_t i = 0; i < len; i++) {
        CHECK(!(s[i] >= 'A' && s[i] <= 'Z'));
    }
}

static void
check_records(const struct dns_answer *a)
{
    CHECK((a->mx != NULL) == (a->type == DNS_MX));
    CHECK((a->addrs != NULL) == (a->type == DNS_A || a->type == DNS_AAAA));
    CHECK((a->txt != NULL) == (a->type == DNS_TXT) && (a->txt_len != NULL) == (a->type == DNS_TXT));
    CHECK((a->names != NULL) == (a->type == DNS_PTR));
    CHECK((a->tlsa != NULL) == (a->type == DNS_TLSA));
    for (size_t i = 0; i < a->n; i++) {
        switch (a->type) {
        case DNS_MX:
            CHECK(i == 0 || a->mx[i - 1].pref <= a->mx[i].pref);
            check_name(a->mx[i].host);
            break;
        case DNS_A:
        case DNS_AAAA:
            CHECK(a->addrs[i].family == (a->type == DNS_A ? AF_INET : AF_INET6));
            break;
        case DNS_TXT:
            CHECK(a->txt[i][a->txt_len[i]] == '\0' && strlen(a->txt[i]) <= a->txt_len[i]);
            break;
        case DNS_PTR:
            check_name(a->names[i]);
            break;
        case DNS_TLSA:
            CHECK(a->tlsa[i].data != NULL);
            break;
        }
    }
}

static void
check_one(const uint8_t *pkt, size_t len, const char *qname, enum dns_rrtype type)
{
    struct dns_answer a;
    int err = dns_answer_parse(pkt, len, qname, type, &a);

    CHECK(err == 0 || err == CELER_EPARSE);
    CHECK(a.type == type);
    if (err != 0) {
        CHECK(a.status == DNS_SERVFAIL && a.n == 0 && a.why != NULL);
    } else if (a.status == DNS_OK) {
        CHECK(a.n > 0 && a.why == NULL);
        check_records(&a);
    } else {
        CHECK(a.n == 0 && a.mx == NULL && a.addrs == NULL && a.txt == NULL && a.names == NULL &&
              a.tlsa == NULL);
        CHECK(a.status == DNS_NODATA || a.status == DNS_NXDOMAIN ||
              (a.status == DNS_SERVFAIL && a.why != NULL && a.ttl == 0));
    }
    dns_answer_release(&a);
    CHECK(a.n == 0 && a.mx == NULL && a.txt == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum dns_rrtype type;

    if (size < 1) {
        return 0;
    }
    type = types[data[0] % (sizeof(types) / sizeof(*types))];
    check_one(data + 1, size - 1, NULL, type);
    check_one(data + 1, size - 1, "multi.example.test", type);
    return 0;
}
