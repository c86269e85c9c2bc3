/*
 * dns_resolvconf: the resolv.conf parser behind net/dns.
 *
 * Reads the nameservers of a resolv.conf-format file (Momentum's
 * Resolv_Conf option). Accepted lines:
 *   nameserver 192.0.2.1            IPv4, port 53
 *   nameserver 2001:db8::1          IPv6 (optionally %scope), port 53
 *   nameserver 192.0.2.1:5353       celer extension: IPv4 with a port
 *   nameserver [2001:db8::1]:5353   celer extension: IPv6 with a port
 *   nameserver [2001:db8::1]        brackets without a port
 *   search / domain / options / sortlist / lookup / family ...   ignored
 * Comments run from '#' or ';' to the end of the line; blank lines are
 * ignored. Anything else (an unknown keyword, a nameserver that is not an
 * IP address, a port outside 1..65535, extra words after the address) is
 * an error reported as "file:line: reason" with the offending text escaped.
 * An unbracketed address with several colons is always a bare IPv6
 * address (use brackets to give a port).
 *
 * The parser takes a strv (the file need not be NUL-terminated) and owns
 * nothing but its output. Pure: no I/O except dns_resolvconf_load().
 */
#ifndef CELER_NET_DNS_RESOLVCONF_H
#define CELER_NET_DNS_RESOLVCONF_H

#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"

/* Address text (with %scope) + '@' + port, as ub_ctx_set_fwd() wants it. */
#define DNS_SERVER_STR_MAX 96
/* Larger files are refused (a resolv.conf is a few hundred bytes). */
#define DNS_RESOLVCONF_MAX ((size_t)1024 * 1024)

struct dns_server {
    int family;                   /* AF_INET or AF_INET6 */
    unsigned char addr[16];       /* network byte order */
    uint16_t port;                /* 53 unless given */
    char ip[64];                  /* the address text as written, with any %scope */
    char fwd[DNS_SERVER_STR_MAX]; /* "ip@port" for ub_ctx_set_fwd() */
};

struct dns_resolvconf {
    struct dns_server *servers; /* owned, in file order */
    size_t n;
};

/*
 * Parses text (the contents of file, used only in messages). On success
 * *out holds the nameservers (possibly none). On failure CELER_EPARSE with
 * "file:line: reason" appended to why, and *out empty.
 */
int dns_resolvconf_parse(struct strv text, const char *file, struct dns_resolvconf *out,
                         struct buf *why) CELER_WUR;
/*
 * Reads and parses path. -ENOENT (reason in why) when it does not exist,
 * other -errno or CELER_ELIMIT when it cannot be read, CELER_EPARSE.
 */
int dns_resolvconf_load(const char *path, struct dns_resolvconf *out, struct buf *why) CELER_WUR;
void dns_resolvconf_release(struct dns_resolvconf *rc);

#endif
