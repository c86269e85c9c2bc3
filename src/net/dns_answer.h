/*
 * dns_answer: a DNS response packet (wire format) turned into the struct
 * dns_answer that net/dns hands to its callers.
 *
 * The packet is parsed with ldns (ldns_wire2pkt), so compression, rdata
 * lengths and names inside rdata are checked by a real parser; then only
 * class IN records are used:
 *   - the CNAME chain is followed from qname through the answer section (at
 *     most DNS_ANSWER_CNAME_MAX links) and only records of the asked type
 *     owned by the end of the chain count, so unrelated records in the
 *     answer section are ignored;
 *   - MX: sorted by preference, stable (equal preferences keep answer
 *     order); a null MX ("0 .") is one entry with host "";
 *   - names (MX exchange, PTR) are lower-case, without the trailing dot,
 *     with ldns's presentation escapes (\DDD) for unusual octets;
 *   - TXT: the character-strings of one record are concatenated;
 *   - records whose rdata does not have the expected shape are skipped.
 * Status comes from the rcode: NOERROR gives DNS_OK or DNS_NODATA,
 * NXDOMAIN gives DNS_NXDOMAIN (even after a CNAME), every other rcode
 * DNS_SERVFAIL with the rcode's name in why. TTLs: see struct dns_answer.
 * secure, bogus and qname are left for the caller to fill.
 *
 * Pure and reentrant; the arrays of the answer are owned by it until
 * dns_answer_release().
 */
#ifndef CELER_NET_DNS_ANSWER_H
#define CELER_NET_DNS_ANSWER_H

#include <stddef.h>

#include "core/err.h"
#include "net/dns.h"

#define DNS_ANSWER_CNAME_MAX 16

/*
 * Parses pkt[0, len) as the response to (qname, type); qname NULL means the
 * name of the packet's question. 0, or CELER_EPARSE (malformed packet, or
 * no name to start from) with a->status DNS_SERVFAIL and a->why set; a is
 * released-safe either way.
 */
int dns_answer_parse(const void *pkt, size_t len, const char *qname, enum dns_rrtype type,
                     struct dns_answer *a) CELER_WUR;
/* Frees what dns_answer_parse() allocated and zeroes the arrays. NULL ok. */
void dns_answer_release(struct dns_answer *a);

#endif
