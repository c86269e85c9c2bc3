/*
 * fuzz_dns_resolvconf: the resolv.conf parser (net/dns_resolvconf).
 *
 * Input: a file's bytes. A failure must leave no servers and report
 * "fuzz.conf:LINE: ..."; a success must give servers with a family, a port
 * in 1..65535 and an "ip@port" forwarder string. The servers, written back
 * as "nameserver [ip]:port" lines, must parse again to the same servers.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/dns_resolvconf.h"
#include "fuzzkit.h"

static void
check_roundtrip(const struct dns_resolvconf *rc)
{
    struct dns_resolvconf back;
    struct buf text, why;

    buf_init(&text, BUF_UNLIMITED);
    buf_init(&why, 1 << 16);
    for (size_t i = 0; i < rc->n; i++) {
        buf_printf(&text, "nameserver [%s]:%u\n", rc->servers[i].ip, (unsigned)rc->servers[i].port);
    }
    CHECK(dns_resolvconf_parse(buf_data(&text), "again.conf", &back, &why) == 0);
    CHECK(back.n == rc->n);
    for (size_t i = 0; i < rc->n; i++) {
        const struct dns_server *a = &rc->servers[i], *b = &back.servers[i];

        CHECK(a->family == b->family && a->port == b->port);
        CHECK(memcmp(a->addr, b->addr, sizeof(a->addr)) == 0);
        CHECK(strcmp(a->fwd, b->fwd) == 0 && strcmp(a->ip, b->ip) == 0);
    }
    dns_resolvconf_release(&back);
    buf_release(&text);
    buf_release(&why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_resolvconf rc;
    struct buf why;
    int err;

    buf_init(&why, 1 << 16);
    err = dns_resolvconf_parse(strv_make((const char *)data, size), "fuzz.conf", &rc, &why);
    if (err != 0) {
        CHECK(err == CELER_EPARSE && rc.n == 0 && rc.servers == NULL);
        CHECK(strncmp(buf_data(&why).ptr, "fuzz.conf:", 10) == 0);
    } else {
        for (size_t i = 0; i < rc.n; i++) {
            const struct dns_server *s = &rc.servers[i];

            CHECK(s->family == AF_INET || s->family == AF_INET6);
            CHECK(s->port >= 1 && strchr(s->fwd, '@') != NULL && s->ip[0] != '\0');
        }
        check_roundtrip(&rc);
    }
    dns_resolvconf_release(&rc);
    buf_release(&why);
    return 0;
}
