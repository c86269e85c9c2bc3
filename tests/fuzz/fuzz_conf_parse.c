/*
 * fuzz_conf_parse: arbitrary bytes as a configuration file.
 *
 * Each input goes through the parser as raw bytes (NUL bytes included) and
 * each value must render back to configuration syntax that parses to the
 * same rendering; then, as text, through the whole loader
 * (registry checks, typed values, scope tree). When it loads, the target
 * dumps it and runs the lookups the daemon runs: outbound chains for every
 * binding with fixed and configured domain names, Host lookups, inbound
 * chains for every Listen with IPv4, IPv6 and v4-mapped peers, and the chain
 * of every scope. It must never crash, leak or hang.
 *
 * Includes stay hermetic: on its first input the target moves into an empty
 * temporary directory (removed at exit), so relative includes find nothing,
 * and inputs that mention "include" together with '/' or ".." are skipped,
 * so no include can reach files outside it. Run libFuzzer with absolute
 * corpus and -artifact_prefix paths for that reason.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/mem.h"
#include "fuzzkit.h"

#define FUZZ_INPUT_MAX (64 * 1024)

static char fuzz_dir[64];

static void
fuzz_cleanup(void)
{
    if (fuzz_dir[0]) {
        (void)rmdir(fuzz_dir); /* empty unless an include created something: it cannot */
    }
}

static void
fuzz_enter_empty_dir(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    memcpy(fuzz_dir, "/tmp/celer-fuzz-conf-XXXXXX", sizeof("/tmp/celer-fuzz-conf-XXXXXX"));
    if (mkdtemp(fuzz_dir) == NULL || chdir(fuzz_dir) != 0) {
        abort(); /* the target cannot be hermetic: refuse to run */
    }
    atexit(fuzz_cleanup);
}

/* True when an include might leave the empty directory. */
static bool
fuzz_include_escapes(const uint8_t *data, size_t size)
{
    bool include = false, slash = false, dots = false;

    for (size_t i = 0; i < size; i++) {
        if (i + 7 <= size && strncasecmp((const char *)data + i, "include", 7) == 0) {
            include = true;
        }
        slash |= data[i] == '/';
        dots |= i + 1 < size && data[i] == '.' && data[i + 1] == '.';
    }
    return include && (slash || dots);
}

static struct sockaddr_storage
fuzz_peer(const char *addr)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        (void)inet_pton(AF_INET6, addr, &s6->sin6_addr); /* constant, valid */
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        (void)inet_pton(AF_INET, addr, &s4->sin_addr); /* constant, valid */
    }
    return ss;
}

static void
fuzz_outbound(const struct conf *c, const char *binding, const char *domain)
{
    struct conf_chain ch;

    conf_chain_outbound(c, binding, domain, &ch);
    (void)conf_chain_get_name(c, &ch, "max_outbound_connections");
    (void)conf_chain_get_name(c, &ch, "outbound_throttle_messages");
    (void)conf_chain_get_name(c, &ch, "message_expiration");
    (void)conf_host_get(c, binding, domain ? domain : "mx.example", "max_outbound_connections");
}

/* Outbound lookups with fixed names and with the (short) names of Domain and Host stanzas. */
static void
fuzz_names_below(const struct conf *c, const struct conf_scope *s, const char *binding)
{
    for (size_t i = 0; i < s->nkids; i++) {
        const struct conf_scope *k = s->kids[i];

        if ((k->type == CONF_SCOPE_DOMAIN || k->type == CONF_SCOPE_HOST) && k->name &&
            strlen(k->name) <= 32) {
            fuzz_outbound(c, binding, k->name);
        }
    }
}

static void
fuzz_inbound(const struct conf *c, const struct conf_scope *listener)
{
    static const char *const peers[] = {"10.1.2.3", "192.0.2.1", "2001:db8::1", "::ffff:10.1.2.3",
                                        "::1"};
    const struct conf_scope *listen;
    size_t it = 0;

    do {
        listen = conf_child_next(listener, CONF_SCOPE_LISTEN, NULL, &it);
        for (size_t p = 0; p < sizeof(peers) / sizeof(peers[0]); p++) {
            struct sockaddr_storage ss = fuzz_peer(peers[p]);
            struct conf_chain ch;

            conf_chain_inbound(c, listener, listen, (struct sockaddr *)&ss, &ch);
            (void)conf_chain_get_name(c, &ch, "relay_hosts");
            (void)conf_chain_get_name(c, &ch, "max_message_size");
        }
    } while (listen);
}

static void
fuzz_walk(const struct conf *c, const struct conf_scope *s)
{
    struct conf_chain ch;
    struct buf path;

    conf_chain_of_scope(c, s, &ch);
    (void)conf_chain_get_name(c, &ch, "max_outbound_connections");
    buf_init(&path, BUF_UNLIMITED);
    conf_scope_path(s, &path);
    buf_release(&path);
    if (s->type == CONF_SCOPE_ESMTP_LISTENER || s->type == CONF_SCOPE_CONTROL_LISTENER ||
        s->type == CONF_SCOPE_HTTP_LISTENER) {
        fuzz_inbound(c, s);
    }
    if (s->type == CONF_SCOPE_BINDING) {
        fuzz_outbound(c, s->name, "example.com");
        fuzz_outbound(c, s->name, NULL);
        fuzz_names_below(c, s, s->name);
        fuzz_names_below(c, s->group, s->name);
        fuzz_names_below(c, c->root, s->name);
    }
    for (size_t i = 0; i < s->nkids; i++) {
        fuzz_walk(c, s->kids[i]);
    }
}

static void
fuzz_load(const char *text)
{
    struct conf_diags d;
    struct conf *c;
    struct buf out;

    conf_diags_init(&d);
    c = conf_load_text("fuzz.conf", text, &d);
    if (c) {
        buf_init(&out, BUF_UNLIMITED);
        conf_dump(c, &out);
        buf_release(&out);
        fuzz_outbound(c, NULL, "example.com");
        fuzz_outbound(c, "nope", "x.example");
        fuzz_walk(c, c->root);
        conf_unref(conf_ref(c)); /* a second reference, dropped */
        conf_unref(c);
    }
    conf_diags_release(&d);
}

/* A value rendered (as --dump-config does) parses back, without error, to the same rendering. */
static void
fuzz_round_trip(const struct conf_value *v)
{
    struct buf first, second, text;
    struct conf_diags d;
    struct conf_ast *again;

    buf_init(&first, BUF_UNLIMITED);
    conf_value_render(v, &first);
    buf_init(&text, BUF_UNLIMITED);
    buf_append_cstr(&text, "v = ");
    buf_append_strv(&text, buf_data(&first));
    buf_append_cstr(&text, "\n");
    conf_diags_init(&d);
    again = conf_parse_text("again.conf", buf_data(&text), &d);
    if (d.n != 0 || again->root->n != 1 || again->root->kids[0]->value == NULL) {
        abort(); /* the rendering is not configuration syntax */
    }
    buf_init(&second, BUF_UNLIMITED);
    conf_value_render(again->root->kids[0]->value, &second);
    if (!strv_eq(buf_data(&first), buf_data(&second))) {
        abort(); /* the rendering changed the value */
    }
    buf_release(&second);
    conf_ast_free(again);
    conf_diags_release(&d);
    buf_release(&text);
    buf_release(&first);
}

static void
fuzz_round_trip_all(const struct conf_node *n)
{
    if (n->value) {
        fuzz_round_trip(n->value);
    }
    for (size_t i = 0; i < n->n; i++) {
        fuzz_round_trip_all(n->kids[i]);
    }
}

/* Listen names and CIDRs: any outcome, but a success must be well-formed. */
static void
fuzz_small_parsers(const char *text)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    struct conf_cidr cidr;

    if (conf_listen_parse(text, &ss, &len) == 0 &&
        ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6 && ss.ss_family != AF_UNIX) ||
         len > sizeof(ss))) {
        abort();
    }
    if (conf_cidr_parse(text, &cidr) == 0) {
        unsigned max = cidr.family == AF_INET ? 32 : 128;

        if (cidr.prefix > max) {
            abort();
        }
        for (unsigned bit = cidr.prefix; bit < max; bit++) {
            if (cidr.addr[bit / 8] & (0x80u >> (bit % 8))) {
                abort(); /* host bits must be clear */
            }
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf_diags d;
    struct conf_ast *ast;
    char *text;

    if (size > FUZZ_INPUT_MAX || fuzz_include_escapes(data, size)) {
        return 0;
    }
    fuzz_enter_empty_dir();

    /* the parser alone, on the raw bytes; every value must render back */
    conf_diags_init(&d);
    ast = conf_parse_text("fuzz.conf", strv_make((const char *)data, size), &d);
    fuzz_round_trip_all(ast->root);
    conf_ast_free(ast);
    conf_diags_release(&d);

    /* the whole loader, on the text up to the first NUL */
    text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_load(text);
    if (size < 128) {
        fuzz_small_parsers(text);
    }
    free(text);
    return 0;
}
