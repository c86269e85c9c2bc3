/*
 * dns_answer: DNS response packets to struct dns_answer (see dns_answer.h).
 */
#include "net/dns_answer.h"

#include <ldns/ldns.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "core/mem.h"

/* The records of the answer section that make up the answer. */
struct dns_rrs {
    ldns_rr **rr; /* owned array of records borrowed from the packet */
    size_t n;
    uint32_t ttl; /* smallest TTL of the records and the CNAME chain */
};

static bool
dns_rr_in(const ldns_rr *rr)
{
    return ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN;
}

static uint32_t
dns_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A DNAME rdf as lower-case text without the trailing dot ("" for the root). */
static char *
dns_dname_text(const ldns_rdf *rdf)
{
    char *s;
    size_t len;

    if (ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME || (s = ldns_rdf2str(rdf)) == NULL) {
        return NULL;
    }
    len = strlen(s); /* ldns's own presentation text, not peer bytes */
    for (size_t i = 0; i < len; i++) {
        s[i] = strv_lower_char(s[i]);
    }
    if (len && s[len - 1] == '.') { /* wire names are absolute: ldns always ends with "." */
        s[len - 1] = '\0';
    }
    return s;
}

/* The negative-caching TTL: min(SOA TTL, SOA minimum) of the authority SOA, or 0. */
static uint32_t
dns_negative_ttl(const ldns_pkt *p)
{
    const ldns_rr_list *auth = ldns_pkt_authority(p);

    for (size_t i = 0; i < ldns_rr_list_rr_count(auth); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(auth, i);
        const ldns_rdf *min;
        uint32_t ttl;

        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || !dns_rr_in(rr) ||
            ldns_rr_rd_count(rr) < 7) {
            continue;
        }
        min = ldns_rr_rdf(rr, 6);
        ttl = ldns_rr_ttl(rr);
        if (ldns_rdf_size(min) == 4 && dns_get32(ldns_rdf_data(min)) < ttl) {
            ttl = dns_get32(ldns_rdf_data(min));
        }
        return ttl;
    }
    return 0;
}

/* The CNAME record of the answer section owned by name, or NULL. */
static const ldns_rr *
dns_find_cname(const ldns_rr_list *ans, const ldns_rdf *name)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(ans); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(ans, i);

        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && dns_rr_in(rr) &&
            ldns_rr_rd_count(rr) >= 1 &&
            ldns_rdf_get_type(ldns_rr_rdf(rr, 0)) == LDNS_RDF_TYPE_DNAME &&
            ldns_dname_compare(ldns_rr_owner(rr), name) == 0) {
            return rr;
        }
    }
    return NULL;
}

/* Follows the CNAME chain from qname and collects the records of type owned by its end. */
static void
dns_collect(const ldns_pkt *p, const ldns_rdf *qname, enum dns_rrtype type, struct dns_rrs *out)
{
    const ldns_rr_list *ans = ldns_pkt_answer(p);
    const ldns_rdf *cur = qname;
    size_t count = ldns_rr_list_rr_count(ans);

    out->rr = NULL;
    out->n = 0;
    out->ttl = UINT32_MAX;
    for (unsigned hops = 0; hops < DNS_ANSWER_CNAME_MAX; hops++) {
        const ldns_rr *cname = dns_find_cname(ans, cur);

        if (cname == NULL) {
            break;
        }
        if (ldns_rr_ttl(cname) < out->ttl) {
            out->ttl = ldns_rr_ttl(cname);
        }
        cur = ldns_rr_rdf(cname, 0);
    }
    if (count) {
        out->rr = xcalloc(count, sizeof(*out->rr));
    }
    for (size_t i = 0; i < count; i++) {
        ldns_rr *rr = ldns_rr_list_rr(ans, i);

        if ((int)ldns_rr_get_type(rr) == (int)type && dns_rr_in(rr) &&
            ldns_dname_compare(ldns_rr_owner(rr), cur) == 0) {
            out->rr[out->n++] = rr;
            if (ldns_rr_ttl(rr) < out->ttl) {
                out->ttl = ldns_rr_ttl(rr);
            }
        }
    }
}

struct dns_mx_sort {
    uint16_t pref;
    size_t idx;
    char *host;
};

static int
dns_mx_cmp(const void *x, const void *y)
{
    const struct dns_mx_sort *a = x, *b = y;

    if (a->pref != b->pref) {
        return a->pref < b->pref ? -1 : 1;
    }
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void
dns_fill_mx(const struct dns_rrs *rrs, struct dns_answer *a)
{
    struct dns_mx_sort *tmp = xcalloc(rrs->n ? rrs->n : 1, sizeof(*tmp));
    size_t n = 0;

    for (size_t i = 0; i < rrs->n; i++) {
        const ldns_rr *rr = rrs->rr[i];
        const ldns_rdf *pref;
        char *host;

        if (ldns_rr_rd_count(rr) < 2 || ldns_rdf_size(pref = ldns_rr_rdf(rr, 0)) != 2 ||
            (host = dns_dname_text(ldns_rr_rdf(rr, 1))) == NULL) {
            continue;
        }
        tmp[n].pref = (uint16_t)(ldns_rdf_data(pref)[0] << 8 | ldns_rdf_data(pref)[1]);
        tmp[n].idx = i;
        tmp[n].host = host;
        n++;
    }
    qsort(tmp, n, sizeof(*tmp), dns_mx_cmp);
    a->mx = xcalloc(n ? n : 1, sizeof(*a->mx));
    for (size_t i = 0; i < n; i++) {
        a->mx[i].pref = tmp[i].pref;
        a->mx[i].host = tmp[i].host;
    }
    a->n = n;
    free(tmp);
}

static void
dns_fill_addrs(const struct dns_rrs *rrs, struct dns_answer *a)
{
    bool v6 = a->type == DNS_AAAA;
    size_t want = v6 ? 16 : 4;

    a->addrs = xcalloc(rrs->n ? rrs->n : 1, sizeof(*a->addrs));
    for (size_t i = 0; i < rrs->n; i++) {
        const ldns_rdf *rdf;

        if (ldns_rr_rd_count(rrs->rr[i]) < 1 ||
            ldns_rdf_size(rdf = ldns_rr_rdf(rrs->rr[i], 0)) != want) {
            continue;
        }
        a->addrs[a->n].family = v6 ? AF_INET6 : AF_INET;
        memcpy(a->addrs[a->n].addr, ldns_rdf_data(rdf), want);
        a->n++;
    }
}

static void
dns_fill_txt(const struct dns_rrs *rrs, struct dns_answer *a)
{
    a->txt = xcalloc(rrs->n ? rrs->n : 1, sizeof(*a->txt));
    a->txt_len = xcalloc(rrs->n ? rrs->n : 1, sizeof(*a->txt_len));
    for (size_t i = 0; i < rrs->n; i++) {
        const ldns_rr *rr = rrs->rr[i];
        size_t total = 0, o = 0;
        bool ok = true;
        char *s;

        for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
            const ldns_rdf *rdf = ldns_rr_rdf(rr, k);

            ok = ok && ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_STR && ldns_rdf_size(rdf) >= 1 &&
                 (size_t)ldns_rdf_data(rdf)[0] + 1 == ldns_rdf_size(rdf);
            total += ldns_rdf_size(rdf);
        }
        if (!ok) {
            continue;
        }
        s = xmalloc(total + 1);
        for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
            const ldns_rdf *rdf = ldns_rr_rdf(rr, k);

            memcpy(s + o, ldns_rdf_data(rdf) + 1, ldns_rdf_size(rdf) - 1);
            o += ldns_rdf_size(rdf) - 1;
        }
        s[o] = '\0';
        a->txt[a->n] = s;
        a->txt_len[a->n] = o;
        a->n++;
    }
}

static void
dns_fill_names(const struct dns_rrs *rrs, struct dns_answer *a)
{
    a->names = xcalloc(rrs->n ? rrs->n : 1, sizeof(*a->names));
    for (size_t i = 0; i < rrs->n; i++) {
        char *name;

        if (ldns_rr_rd_count(rrs->rr[i]) >= 1 &&
            (name = dns_dname_text(ldns_rr_rdf(rrs->rr[i], 0))) != NULL) {
            a->names[a->n++] = name;
        }
    }
}

static void
dns_fill_tlsa(const struct dns_rrs *rrs, struct dns_answer *a)
{
    a->tlsa = xcalloc(rrs->n ? rrs->n : 1, sizeof(*a->tlsa));
    for (size_t i = 0; i < rrs->n; i++) {
        const ldns_rr *rr = rrs->rr[i];
        struct dns_tlsa *t = &a->tlsa[a->n];
        const ldns_rdf *data;

        if (ldns_rr_rd_count(rr) != 4 || ldns_rdf_size(ldns_rr_rdf(rr, 0)) != 1 ||
            ldns_rdf_size(ldns_rr_rdf(rr, 1)) != 1 || ldns_rdf_size(ldns_rr_rdf(rr, 2)) != 1) {
            continue;
        }
        data = ldns_rr_rdf(rr, 3);
        t->usage = ldns_rdf_data(ldns_rr_rdf(rr, 0))[0];
        t->selector = ldns_rdf_data(ldns_rr_rdf(rr, 1))[0];
        t->mtype = ldns_rdf_data(ldns_rr_rdf(rr, 2))[0];
        t->len = ldns_rdf_size(data);
        t->data = xmemdup(ldns_rdf_data(data), t->len ? t->len : 1);
        a->n++;
    }
}

static const char *
dns_rcode_why(ldns_pkt_rcode rc)
{
    switch (rc) {
    case LDNS_RCODE_FORMERR:
        return "FORMERR";
    case LDNS_RCODE_SERVFAIL:
        return "SERVFAIL";
    case LDNS_RCODE_NOTIMPL:
        return "NOTIMP";
    case LDNS_RCODE_REFUSED:
        return "REFUSED";
    default:
        return "unexpected rcode";
    }
}

/* Fills a from a parsed packet whose rcode is NOERROR. */
static void
dns_answer_records(const ldns_pkt *p, const ldns_rdf *qname, struct dns_answer *a)
{
    struct dns_rrs rrs;

    dns_collect(p, qname, a->type, &rrs);
    switch (a->type) {
    case DNS_MX:
        dns_fill_mx(&rrs, a);
        break;
    case DNS_A:
    case DNS_AAAA:
        dns_fill_addrs(&rrs, a);
        break;
    case DNS_TXT:
        dns_fill_txt(&rrs, a);
        break;
    case DNS_PTR:
        dns_fill_names(&rrs, a);
        break;
    case DNS_TLSA:
        dns_fill_tlsa(&rrs, a);
        break;
    }
    free(rrs.rr);
    if (a->n) {
        a->status = DNS_OK;
        a->ttl = rrs.ttl;
    } else {
        dns_answer_release(a); /* the empty arrays */
        a->status = DNS_NODATA;
        a->ttl = dns_negative_ttl(p);
    }
}

int
dns_answer_parse(const void *pkt, size_t len, const char *qname, enum dns_rrtype type,
                 struct dns_answer *a)
{
    ldns_pkt *p = NULL;
    ldns_rdf *name = NULL;
    ldns_pkt_rcode rc;
    const ldns_rr_list *q;

    a->status = DNS_SERVFAIL;
    a->ttl = 0;
    a->type = type;
    a->n = 0;
    a->mx = NULL;
    a->addrs = NULL;
    a->txt = NULL;
    a->txt_len = NULL;
    a->names = NULL;
    a->tlsa = NULL;
    a->why = "malformed answer";
    if (pkt == NULL || ldns_wire2pkt(&p, pkt, len) != LDNS_STATUS_OK) {
        return CELER_EPARSE;
    }
    q = ldns_pkt_question(p);
    if (qname) {
        name = ldns_dname_new_frm_str(qname);
    } else if (ldns_rr_list_rr_count(q) >= 1) {
        name = ldns_rdf_clone(ldns_rr_owner(ldns_rr_list_rr(q, 0)));
    }
    if (name == NULL) {
        ldns_pkt_free(p);
        a->why = "invalid query name";
        return CELER_EPARSE;
    }
    a->why = NULL;
    rc = ldns_pkt_get_rcode(p);
    if (rc == LDNS_RCODE_NOERROR) {
        dns_answer_records(p, name, a);
    } else if (rc == LDNS_RCODE_NXDOMAIN) {
        a->status = DNS_NXDOMAIN;
        a->ttl = dns_negative_ttl(p);
    } else {
        a->why = dns_rcode_why(rc);
    }
    ldns_rdf_deep_free(name);
    ldns_pkt_free(p);
    return 0;
}

void
dns_answer_release(struct dns_answer *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; a->mx && i < a->n; i++) {
        free(a->mx[i].host);
    }
    for (size_t i = 0; a->txt && i < a->n; i++) {
        free(a->txt[i]);
    }
    for (size_t i = 0; a->names && i < a->n; i++) {
        free(a->names[i]);
    }
    for (size_t i = 0; a->tlsa && i < a->n; i++) {
        free(a->tlsa[i].data);
    }
    free(a->mx);
    free(a->addrs);
    free(a->txt);
    free(a->txt_len);
    free(a->names);
    free(a->tlsa);
    a->mx = NULL;
    a->addrs = NULL;
    a->txt = NULL;
    a->txt_len = NULL;
    a->names = NULL;
    a->tlsa = NULL;
    a->n = 0;
}
