/*
 * dns_resolvconf: resolv.conf parsing (see dns_resolvconf.h).
 */
#include "net/dns_resolvconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

#define DNS_RESOLVCONF_SCOPE_MAX 15 /* IFNAMSIZ - 1 */

/* Keywords of resolv.conf(5) (and the BSDs) that a stub resolver may ignore. */
static const char *const dns_resolvconf_ignored[] = {
    "search", "domain", "options", "sortlist", "lookup", "family",
};

/* Appends "file:line: what 'text'" (text escaped; left out when empty). */
static void
dns_resolvconf_error(struct buf *why, const char *file, unsigned line, const char *what,
                     struct strv text)
{
    char esc[96];

    file = file ? file : "resolv.conf";
    if (text.len == 0) {
        buf_printf(why, "%s:%u: %s", file, line, what);
        return;
    }
    log_escape(text.ptr, text.len, esc, sizeof(esc));
    buf_printf(why, "%s:%u: %s '%s'", file, line, what, esc);
}

static bool
dns_scope_ok(struct strv s)
{
    if (s.len == 0 || s.len > DNS_RESOLVCONF_SCOPE_MAX) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

/* Parses an IP (IPv6 may carry %scope when v6_ok) into srv->family/addr/ip. */
static bool
dns_parse_ip(struct strv s, bool v6_ok, struct dns_server *srv)
{
    char tmp[INET6_ADDRSTRLEN];
    ptrdiff_t pct = strv_chr(s, '%');
    struct strv ip = pct < 0 ? s : strv_sub(s, 0, (size_t)pct);

    if (ip.len == 0 || ip.len >= sizeof(tmp) || memchr(ip.ptr, '\0', ip.len)) {
        return false;
    }
    memcpy(tmp, ip.ptr, ip.len);
    tmp[ip.len] = '\0';
    if (pct < 0 && inet_pton(AF_INET, tmp, srv->addr) == 1) {
        srv->family = AF_INET;
    } else if (v6_ok && inet_pton(AF_INET6, tmp, srv->addr) == 1) {
        srv->family = AF_INET6;
        if (pct >= 0 && !dns_scope_ok(strv_from(s, (size_t)pct + 1))) {
            return false;
        }
    } else {
        return false;
    }
    if (s.len >= sizeof(srv->ip)) {
        return false;
    }
    strv_copy(s, srv->ip, sizeof(srv->ip));
    return true;
}

static bool
dns_parse_port(struct strv s, uint16_t *port)
{
    uint64_t v;

    if (strv_to_u64(s, 65535, &v) != 0 || v == 0) {
        return false;
    }
    *port = (uint16_t)v;
    return true;
}

/* One nameserver address: IP, IP:PORT, [IPv6], [IPv6]:PORT. 0 or a reason. */
static const char *
dns_parse_server(struct strv tok, struct dns_server *srv)
{
    struct strv ip = tok, port = STRV_NULL;
    ptrdiff_t colon = strv_chr(tok, ':');
    bool bracketed = false;

    memset(srv, 0, sizeof(*srv));
    srv->port = 53;
    if (tok.len && tok.ptr[0] == '[') {
        ptrdiff_t close = strv_chr(tok, ']');

        if (close < 0) {
            return "nameserver: missing ']' in";
        }
        ip = strv_sub(tok, 1, (size_t)close - 1);
        port = strv_from(tok, (size_t)close + 1);
        if (port.len && port.ptr[0] != ':') {
            return "nameserver: unexpected text after ']' in";
        }
        if (port.len && (port = strv_from(port, 1)).len == 0) {
            return "nameserver: missing port in";
        }
        bracketed = true;
    } else if (colon >= 0 && strv_chr(strv_from(tok, (size_t)colon + 1), ':') < 0) {
        ip = strv_sub(tok, 0, (size_t)colon); /* exactly one colon: IPv4:PORT */
        port = strv_from(tok, (size_t)colon + 1);
        if (port.len == 0) {
            return "nameserver: missing port in";
        }
    }
    if (!dns_parse_ip(ip, bracketed || port.len == 0, srv)) { /* IPv4:PORT: no IPv6 */
        return "nameserver: not an IP address:";
    }
    if (port.len && !dns_parse_port(port, &srv->port)) {
        return "nameserver: bad port (1..65535) in";
    }
    (void)snprintf(srv->fwd, sizeof(srv->fwd), "%s@%u", srv->ip, (unsigned)srv->port);
    return NULL;
}

/* One line without its comment. 0, or CELER_EPARSE with why filled. */
static int
dns_resolvconf_line(struct strv l, const char *file, unsigned lineno, struct dns_resolvconf *out,
                    size_t *cap, struct buf *why)
{
    struct strv kw = strv_next_word(&l), tok, extra;
    struct dns_server srv;
    const char *bad;

    if (kw.len == 0) {
        return 0;
    }
    if (!strv_eq_cstr(kw, "nameserver")) {
        for (size_t i = 0; i < sizeof(dns_resolvconf_ignored) / sizeof(*dns_resolvconf_ignored);
             i++) {
            if (strv_eq_cstr(kw, dns_resolvconf_ignored[i])) {
                return 0;
            }
        }
        dns_resolvconf_error(why, file, lineno, "unknown keyword", kw);
        return CELER_EPARSE;
    }
    tok = strv_next_word(&l);
    if (tok.len == 0) {
        dns_resolvconf_error(why, file, lineno, "nameserver: missing address", STRV_NULL);
        return CELER_EPARSE;
    }
    if ((extra = strv_trim(l)).len) {
        dns_resolvconf_error(why, file, lineno,
                             "nameserver: unexpected text after the address:", extra);
        return CELER_EPARSE;
    }
    if ((bad = dns_parse_server(tok, &srv)) != NULL) {
        dns_resolvconf_error(why, file, lineno, bad, tok);
        return CELER_EPARSE;
    }
    out->servers = xgrow(out->servers, cap, out->n + 1, sizeof(*out->servers));
    out->servers[out->n++] = srv;
    return 0;
}

int
dns_resolvconf_parse(struct strv text, const char *file, struct dns_resolvconf *out,
                     struct buf *why)
{
    struct strv rest = text;
    unsigned lineno = 0;
    size_t cap = 0;

    out->servers = NULL;
    out->n = 0;
    while (rest.len) {
        struct strv l = strv_split(&rest, '\n');
        ptrdiff_t hash = strv_chr(l, '#'), semi = strv_chr(l, ';');

        lineno++;
        if (hash >= 0) {
            l = strv_sub(l, 0, (size_t)hash);
        }
        if (semi >= 0 && (size_t)semi < l.len) {
            l = strv_sub(l, 0, (size_t)semi);
        }
        if (dns_resolvconf_line(l, file, lineno, out, &cap, why) != 0) {
            dns_resolvconf_release(out);
            return CELER_EPARSE;
        }
    }
    return 0;
}

/* Reads all of fd into b; 0, -errno or CELER_ELIMIT. */
static int
dns_read_all(int fd, struct buf *b)
{
    for (;;) {
        size_t room;
        char *p = try_buf_reserve(b, 4096, &room);
        ssize_t n;

        if (p == NULL) {
            return CELER_ELIMIT;
        }
        n = read(fd, p, room);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return 0;
        }
        buf_commit(b, (size_t)n);
    }
}

int
dns_resolvconf_load(const char *path, struct dns_resolvconf *out, struct buf *why)
{
    struct buf text;
    int fd, rc;

    out->servers = NULL;
    out->n = 0;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        rc = -errno;
        buf_printf(why, "cannot open %s: %s", path, strerror(-rc));
        return rc;
    }
    buf_init(&text, DNS_RESOLVCONF_MAX);
    rc = dns_read_all(fd, &text);
    (void)close(fd); /* read-only: nothing to lose */
    if (rc != 0) {
        buf_printf(why, "cannot read %s: %s", path,
                   rc == CELER_ELIMIT ? "file too large" : strerror(-rc));
    } else {
        rc = dns_resolvconf_parse(buf_data(&text), path, out, why);
    }
    buf_release(&text);
    return rc;
}

void
dns_resolvconf_release(struct dns_resolvconf *rc)
{
    if (rc == NULL) {
        return;
    }
    free(rc->servers);
    rc->servers = NULL;
    rc->n = 0;
}
