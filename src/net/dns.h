/*
 * dns: asynchronous DNS lookups on one event loop (libunbound + ldns).
 *
 * One struct dns per loop. It owns a libunbound context running in
 * threaded async mode (one resolver thread inside libunbound, with its own
 * cache), a read event on the loop's base watching ub_fd(), and every
 * outstanding struct dns_query. Answers come back from libunbound over its
 * pipe; the read event calls ub_process() and the answer packet is parsed
 * with ldns (net/dns_answer.h), so TTLs and names inside rdata are read
 * from the wire, not from libunbound's summary.
 *
 * Threading: everything runs on the owning loop's thread. dns_new(),
 * dns_free(), dns_lookup() and dns_cancel() must be called on that thread
 * (or before the loop group starts); callbacks run there, always later,
 * never inside dns_lookup() (an answer known at once, such as an invalid
 * name, is delivered from a zero-delay timer). dns_get_stats() alone may
 * be called from any thread (relaxed atomics).
 *
 * Callbacks: each query's callback runs exactly once, unless the query is
 * cancelled or the dns is freed first. The answer and everything it points
 * to are valid only during the call. A callback may start new lookups,
 * cancel other queries, cancel its own query (a no-op) or free the dns.
 * Once its callback has returned, a query handle is gone.
 *
 * Timeouts: each query has its own deadline (timeout_ms). On expiry the
 * libunbound query is cancelled and the callback gets DNS_TIMEOUT.
 * libunbound may give up earlier on its own (e.g. when every server
 * refuses or is unreachable); that comes back as DNS_SERVFAIL.
 *
 * Resolver configuration (file in resolv.conf format, net/dns_resolvconf.h):
 *   - `nameserver IP` lines (IPv4 or IPv6, port 53), plus the celer
 *     extension `nameserver IP:PORT` and `nameserver [IPv6]:PORT` so tests
 *     can use a DNS server on a loopback port. `search`, `domain`,
 *     `options`, `sortlist`, `lookup` and `family` lines are ignored;
 *     anything else, or a bad address or port, fails dns_new() with
 *     "file:line: reason" in why.
 *   - With nameservers, celer is a stub resolver: the servers are
 *     libunbound forwarders for the whole tree (queries go out with RD set,
 *     the servers recurse), loopback servers are allowed
 *     (do-not-query-localhost: no), and the private reverse zones
 *     (10.in-addr.arpa and the like) are passed to the servers instead of
 *     being answered NXDOMAIN locally (unblock-lan-zones).
 *   - Without nameserver lines, or when resolv_conf is NULL and
 *     /etc/resolv.conf does not exist, celer resolves recursively from the
 *     root servers (libunbound's built-in root hints), as a local
 *     validating-capable resolver would. We do not copy glibc's fallback to
 *     a server on 127.0.0.1, which an MTA host need not run. An explicit
 *     resolv_conf that cannot be read fails dns_new().
 *   - libunbound answers special-use names itself (e.g. NXDOMAIN for
 *     "test.", "invalid.", "localhost."); transparent_zones lists zones it
 *     must look up like any other (e.g. "test." for test zones).
 *   - No trust anchor is configured yet, so secure is false for now; bogus
 *     answers (once validation exists) come back as DNS_SERVFAIL with bogus.
 *
 * Ownership: dns_new() copies what it needs from its options. The dns
 * owns its queries; the caller holds a query handle only until the query
 * is answered or cancelled. libunbound's thread starts with the first
 * lookup; dns_free() joins it (a short wait on the loop, at shutdown).
 * The dns keeps a persistent read event on the loop's base, so a stopping
 * loop keeps running until the dns is freed: free it in the loop's on_stop
 * (or earlier).
 *
 * Limits: names longer than 253 octets, with empty or over-long labels, or
 * with octets other than printable ASCII (no spaces, no backslash escapes)
 * are answered DNS_NXDOMAIN without a lookup ("invalid domain name").
 * Class IN only. Each dns has its own cache (no sharing between loops).
 */
#ifndef CELER_NET_DNS_H
#define CELER_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "net/loop.h"

#define DNS_TIMEOUT_DEFAULT_MS 30000
#define DNS_NAME_MAX           253 /* presentation form, without the trailing dot */

struct dns;       /* one per loop */
struct dns_query; /* an outstanding lookup */

struct dns_opts {
    const char *resolv_conf; /* borrowed; path, NULL = /etc/resolv.conf (Momentum's Resolv_Conf) */
    unsigned timeout_ms;     /* per-query deadline (answer DNS_TIMEOUT), 0 = 30000 */
    /* borrowed; NULL-terminated zones libunbound must not answer locally (e.g. "test."), or NULL */
    const char *const *transparent_zones;
};

enum dns_rrtype {
    DNS_A = 1,
    DNS_PTR = 12,
    DNS_MX = 15,
    DNS_TXT = 16,
    DNS_AAAA = 28,
    DNS_TLSA = 52,
};

enum dns_status {
    DNS_OK,       /* answer records present */
    DNS_NODATA,   /* the name exists, no records of that type */
    DNS_NXDOMAIN, /* the name does not exist (permanent) */
    DNS_SERVFAIL, /* temporary: server failure, refused, bogus DNSSEC... */
    DNS_TIMEOUT,  /* temporary: no answer within timeout_ms */
};

struct dns_mx {
    uint16_t pref;
    char *host; /* owned by the answer; lower-case, no trailing dot; "" for a null MX "." */
};

struct dns_addr {
    int family;             /* AF_INET (4 bytes of addr used) or AF_INET6 */
    unsigned char addr[16]; /* network byte order */
};

struct dns_tlsa {
    uint8_t usage, selector, mtype;
    unsigned char *data; /* owned by the answer: the certificate association data */
    size_t len;
};

/*
 * An answer, valid only during the callback. Exactly one of the arrays is
 * set for DNS_OK (the one of type; n entries), none otherwise. The arrays
 * and their strings are owned by the answer (freed after the callback, or
 * by dns_answer_release() for users of net/dns_answer.h).
 */
struct dns_answer {
    enum dns_status status;
    /*
     * DNS_OK: the smallest TTL of the records used, CNAMEs of the chain
     * included. NXDOMAIN/NODATA: the negative-caching TTL, min(SOA TTL, SOA
     * minimum) of the authority SOA, or 0 without one. Otherwise 0.
     */
    uint32_t ttl;
    bool secure;       /* DNSSEC-validated (needs a trust anchor; later for DANE) */
    bool bogus;        /* DNSSEC validation failed (status is DNS_SERVFAIL) */
    const char *qname; /* borrowed from the query: the name as passed to dns_lookup() */
    enum dns_rrtype type;
    size_t n;
    struct dns_mx *mx;      /* MX: sorted by preference, equal ones in answer order */
    struct dns_addr *addrs; /* A/AAAA */
    char **txt;             /* TXT: the strings of one record concatenated, NUL-terminated */
    size_t *txt_len;        /* TXT: their lengths (a TXT string may contain NUL bytes) */
    char **names;           /* PTR: lower-case, no trailing dot */
    struct dns_tlsa *tlsa;  /* TLSA */
    /*
     * borrowed; NULL for DNS_OK, else a short reason: "SERVFAIL from 127.0.0.1@53",
     * "REFUSED from ...", "timeout after 30000 ms", "no such domain", "no MX records",
     * "invalid domain name", "DNSSEC bogus: ...", "resolver error: ..."
     */
    const char *why;
};

typedef void dns_fn(const struct dns_answer *a, void *arg);

/* Counters for the console's summary ("DNS A Queries", ...). */
struct dns_stats {
    uint64_t queries;    /* lookups started */
    uint64_t mx_queries; /* of which MX */
    uint64_t a_queries;  /* of which A or AAAA (address lookups) */
    uint64_t pending;    /* outstanding now */
    uint64_t failures;   /* answered DNS_SERVFAIL or DNS_TIMEOUT */
};

/*
 * A resolver for loop lp (see the contract above for o). o may be NULL
 * (all defaults). NULL with the reason in why (appended) on failure.
 */
struct dns *dns_new(struct loop *lp, const struct dns_opts *o, struct buf *why);
/*
 * Cancels every outstanding query (no callback runs after this), stops
 * libunbound's thread and frees everything. NULL ok. May be called from a
 * query's callback.
 */
void dns_free(struct dns *d);

/*
 * Starts a lookup of name (with or without the trailing dot); cb(answer,
 * arg) runs later on the loop. NULL only on allocation-level failure
 * (libunbound could not take the query), and then cb never runs.
 */
struct dns_query *dns_lookup(struct dns *d, const char *name, enum dns_rrtype type, dns_fn *cb,
                             void *arg);
/*
 * Forgets a query: its callback will not run. Safe from inside another
 * query's callback; a no-op from inside the query's own callback. NULL ok.
 */
void dns_cancel(struct dns_query *q);

/* Any thread. */
void dns_get_stats(const struct dns *d, struct dns_stats *out);

/* "ok", "nodata", "nxdomain", "servfail", "timeout". */
const char *dns_status_name(enum dns_status s);
/* "A", "MX", ... */
const char *dns_rrtype_name(enum dns_rrtype t);
/* True for statuses worth retrying later (DNS_SERVFAIL, DNS_TIMEOUT). */
bool dns_status_temporary(enum dns_status s);

#endif
