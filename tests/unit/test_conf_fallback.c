/*
 * test_conf_fallback: where each effective value comes from.
 *
 * The outbound order B::D > BG::D > B > BG > global::D > global > default is
 * checked exhaustively: every subset of the six levels set in one
 * configuration, with the value and the scope it comes from. Likewise the
 * inbound order (N::Peer > N > L::Peer > L > pathway > pathway group >
 * global). Then: exact domains before regexes, regexes in declaration order;
 * the implicit default binding and group; throttles shared by reference (the
 * same setting object, hence one token bucket); Host scopes that do not
 * inherit; Peer matching with IPv4, IPv6 and v4-mapped addresses; the chain
 * of every scope kind; and the dump an operator reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/mem.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

static struct conf *
load(const char *text)
{
    struct conf_diags d;
    struct conf *c;

    conf_diags_init(&d);
    c = conf_load_text("t.conf", text, &d);
    if (c == NULL) {
        conf_diags_print(&d, stderr);
        print_error("configuration rejected:\n%s\n", text);
        fail();
    }
    conf_diags_release(&d);
    return c;
}

static char *
scope_path(const struct conf_scope *s)
{
    struct buf out;

    buf_init(&out, BUF_UNLIMITED);
    if (s == NULL) {
        buf_append_cstr(&out, "default");
    } else {
        conf_scope_path(s, &out);
    }
    return buf_steal_cstr(&out);
}

static char *
chain_text(const struct conf_chain *ch)
{
    struct buf out;

    buf_init(&out, BUF_UNLIMITED);
    for (unsigned i = 0; i < ch->n; i++) {
        if (i) {
            buf_append_cstr(&out, " | ");
        }
        conf_scope_path(ch->s[i], &out);
    }
    return buf_steal_cstr(&out);
}

static void
assert_chain(const struct conf_chain *ch, const char *want)
{
    char *got = chain_text(ch);

    if (strcmp(got, want) != 0) {
        print_error("chain\n  %s\nwanted\n  %s\n", got, want);
        free(got);
        fail();
    }
    free(got);
}

static void
assert_from(const struct conf_setting *st, const char *want_path)
{
    char *got = scope_path(st->scope);

    if (strcmp(got, want_path) != 0) {
        print_error("value from %s, wanted from %s\n", got, want_path);
        free(got);
        fail();
    }
    free(got);
}

static const struct conf_setting *
outbound(const struct conf *c, const char *binding, const char *domain, const char *opt)
{
    struct conf_chain ch;

    conf_chain_outbound(c, binding, domain, &ch);
    return conf_chain_get_name(c, &ch, opt);
}

/* The built-in default of max_outbound_connections, whatever the registry says it is. */
static int64_t
moc_default(const struct conf *c)
{
    return c->defaults[conf_option_index(conf_option_by_name("max_outbound_connections"))].val.i;
}

static struct sockaddr_storage
sa(const char *addr)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
    }
    return ss;
}

/* ---- outbound ---- */

enum { O_BD, O_BGD, O_B, O_BG, O_GD, O_G, O_LEVELS };

static const char *const o_paths[O_LEVELS] = {
    "binding_group \"g\" binding \"b\" domain \"d.EXAMPLE\"",
    "binding_group \"g\" domain \"D.example\"",
    "binding_group \"g\" binding \"b\"",
    "binding_group \"g\"",
    "domain \"d.example\"",
    "global",
};

static char *
o_config(unsigned mask)
{
    char set[O_LEVELS][48];

    for (unsigned l = 0; l < O_LEVELS; l++) {
        set[l][0] = '\0';
        if (mask & (1u << l)) {
            snprintf(set[l], sizeof(set[l]), "max_outbound_connections = %u", 100 + l);
        }
    }
    /* the domain stanzas always exist, empty or not: an empty one must not stop fallback */
    return xasprintf("%s\n"
                     "Domain \"d.example\" { %s }\n"
                     "Binding_Group \"g\" {\n"
                     "  %s\n"
                     "  Domain \"D.example\" { %s }\n"
                     "  Binding \"b\" {\n"
                     "    %s\n"
                     "    Domain \"d.EXAMPLE\" { %s }\n"
                     "  }\n"
                     "}\n",
                     set[O_G], set[O_GD], set[O_BG], set[O_BGD], set[O_B], set[O_BD]);
}

static void
test_outbound_order_exhaustive(void **state)
{
    (void)state;
    for (unsigned mask = 0; mask < (1u << O_LEVELS); mask++) {
        char *text = o_config(mask);
        struct conf *c = load(text);
        int win = -1, win_nodomain = -1;
        const struct conf_setting *st;

        for (int l = O_LEVELS - 1; l >= 0; l--) {
            if (mask & (1u << l)) {
                win = l;
                if (l == O_B || l == O_BG || l == O_G) {
                    win_nodomain = l;
                }
            }
        }
        st = outbound(c, "b", "d.example", "max_outbound_connections");
        if (st->val.i != (win < 0 ? moc_default(c) : 100 + win)) {
            print_error("levels %#x: got %lld\n%s\n", mask, (long long)st->val.i, text);
            fail();
        }
        assert_from(st, win < 0 ? "default" : o_paths[win]);
        /* the same with the domain in another case */
        assert_ptr_equal(outbound(c, "b", "D.Example", "max_outbound_connections"), st);
        /* no domain, or one without a stanza: only B, BG, global */
        st = outbound(c, "b", NULL, "max_outbound_connections");
        assert_int_equal(st->val.i, win_nodomain < 0 ? moc_default(c) : 100 + win_nodomain);
        assert_ptr_equal(outbound(c, "b", "other.example", "max_outbound_connections"), st);
        conf_unref(c);
        free(text);
    }
}

static void
test_outbound_chain(void **state)
{
    char *text = o_config(0);
    struct conf *c = load(text);
    struct conf_chain ch;

    (void)state;
    conf_chain_outbound(c, "b", "d.example", &ch);
    assert_chain(&ch, "binding_group \"g\" binding \"b\" domain \"d.EXAMPLE\" | "
                      "binding_group \"g\" domain \"D.example\" | binding_group \"g\" binding "
                      "\"b\" | binding_group \"g\" | domain \"d.example\" | global");
    conf_chain_outbound(c, "b", NULL, &ch);
    assert_chain(&ch, "binding_group \"g\" binding \"b\" | binding_group \"g\" | global");
    conf_chain_outbound(c, NULL, "d.example", &ch);
    assert_chain(&ch, "binding \"default\" | binding_group \"default\" | domain \"d.example\" | "
                      "global");
    /* an unknown binding falls back to the default binding */
    conf_chain_outbound(c, "nope", "x.example", &ch);
    assert_chain(&ch, "binding \"default\" | binding_group \"default\" | global");
    conf_unref(c);
    free(text);
}

static void
test_exact_before_regex(void **state)
{
    struct conf *c = load("Domain \"/^d\\.example$/\" { max_outbound_connections = 1 }\n"
                          "Domain \"/example$/\" { max_outbound_connections = 2 }\n"
                          "Domain \"/^x/\" { max_outbound_connections = 5 }\n"
                          "Domain \"D.Example\" { max_outbound_connections = 3 }\n"
                          "Binding \"b\" {\n"
                          "  Domain \"/^y/\" { max_outbound_connections = 6 }\n"
                          "}\n"
                          "Domain \"y.example\" { max_outbound_connections = 7 }\n");
    static const struct {
        const char *binding;
        const char *domain;
        int64_t want;
    } cases[] = {
        {NULL, "d.example", 3}, /* exact (declared last) before any regex */
        {NULL, "D.EXAMPLE", 3}, /* exact names are case-insensitive */
        {NULL, "x.example", 2}, /* first regex in declaration order */
        {NULL, "X.EXAMPLE", 2}, /* regexes are case-insensitive */
        {NULL, "x.org", 5},     /* only /^x/ matches */
        {NULL, "nomatch.org", -1},
        /* the built-in default */ {NULL, "dd.example", 2}, /* anchored regex does not match */
        {"b", "y.example", 6}, /* a binding's regex outranks a global exact stanza */
        {NULL, "y.example", 7},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        const struct conf_setting *st =
            outbound(c, cases[i].binding, cases[i].domain, "max_outbound_connections");
        int64_t want = cases[i].want < 0 ? moc_default(c) : cases[i].want;

        if (st->val.i != want) {
            print_error("%s: %lld, wanted %lld\n", cases[i].domain, (long long)st->val.i,
                        (long long)want);
            fail();
        }
    }
    assert_string_equal(conf_match_domain(c->root, "d.example")->name, "D.Example");
    assert_string_equal(conf_match_domain(c->root, "zz.example")->name, "/example$/");
    assert_null(conf_match_domain(c->root, "zz.org"));
    assert_null(conf_match_domain(c->root, NULL));
    conf_unref(c);
}

static void
test_implicit_default(void **state)
{
    struct conf *c;
    const struct conf_scope *b, *g;
    struct conf_chain ch;

    (void)state;
    /* nothing declared: both exist, implicitly */
    c = load("");
    b = conf_binding(c, "default");
    g = conf_binding_group(c, "default");
    assert_non_null(b);
    assert_non_null(g);
    assert_true(b->implicit);
    assert_true(g->implicit);
    assert_ptr_equal(b->group, g);
    assert_ptr_equal(conf_binding(c, NULL), b);
    assert_ptr_equal(conf_binding_group(c, NULL), g);
    conf_chain_outbound(c, NULL, NULL, &ch);
    assert_chain(&ch, "binding \"default\" | binding_group \"default\" | global");
    conf_unref(c);

    /* top-level bindings belong to group "default"; a declared default group is used */
    c = load("Binding_Group \"default\" { max_outbound_connections = 7 }\n"
             "Binding \"top\" { }\n"
             "Binding_Group \"g\" { Binding \"b\" { } }\n");
    g = conf_binding_group(c, "default");
    assert_false(g->implicit);
    assert_int_equal(g->loc.line, 1);
    assert_true(conf_binding(c, "default")->implicit);
    assert_ptr_equal(conf_binding(c, "default")->group, g);
    assert_ptr_equal(conf_binding(c, "top")->group, g);
    assert_ptr_equal(conf_binding(c, "b")->group, conf_binding_group(c, "g"));
    assert_int_equal(outbound(c, NULL, NULL, "max_outbound_connections")->val.i, 7);
    assert_int_equal(outbound(c, "top", NULL, "max_outbound_connections")->val.i, 7);
    assert_int_equal(outbound(c, "nope", NULL, "max_outbound_connections")->val.i, 7);
    assert_int_equal(outbound(c, "b", NULL, "max_outbound_connections")->val.i, moc_default(c));
    assert_null(conf_binding_group(c, "nope"));
    assert_null(conf_binding(c, "Top")); /* binding names are case-sensitive */
    conf_unref(c);

    /* a declared default binding, inside a group */
    c = load("Binding_Group \"g\" {\n"
             "  max_outbound_connections = 8\n"
             "  Binding \"default\" { retry_interval = 9 }\n"
             "}\n");
    b = conf_binding(c, "default");
    assert_false(b->implicit);
    assert_ptr_equal(b->group, conf_binding_group(c, "g"));
    assert_int_equal(outbound(c, NULL, NULL, "max_outbound_connections")->val.i, 8);
    assert_int_equal(outbound(c, NULL, NULL, "retry_interval")->val.i, 9);
    assert_true(conf_binding_group(c, "default")->implicit);
    conf_unref(c);
}

/* ---- throttles by reference ---- */

static void
test_throttles_shared(void **state)
{
    struct conf *c =
        load("Binding_Group \"g\" {\n"
             "  Outbound_Throttle_Messages = \"600/60\"\n"
             "  Binding \"b1\" { }\n"
             "  Binding \"b2\" { Domain \"x.example\" { } }\n"
             "  Binding \"b3\" { Outbound_Throttle_Messages = \"10\" }\n"
             "  Binding \"b4\" { Outbound_Throttle_Messages = \"10\" }\n"
             "}\n"
             "Binding_Group \"h\" {\n"
             "  Domain \"/^x/\" { Outbound_Throttle_Messages = \"5\" }\n"
             "  Binding \"h1\" { }\n"
             "  Binding \"h2\" { }\n"
             "}\n"
             "Binding \"top\" { }\n"
             "Domain \"/\\.example\\.com$/\" { Outbound_Throttle_Messages = \"100\" }\n"
             "Domain \"exact.example.com\" { Outbound_Throttle_Messages = \"100\" }\n");
    const char *o = "outbound_throttle_messages";
    const struct conf_setting *g1, *g2, *b3, *b4, *r1, *r2, *ex;

    (void)state;
    /* the group's setting, one object for every binding that sets nothing */
    g1 = outbound(c, "b1", NULL, o);
    g2 = outbound(c, "b2", "x.example", o);
    assert_ptr_equal(g1, g2);
    assert_ptr_equal(g1, conf_scope_get(conf_binding_group(c, "g"), o));
    assert_int_equal(g1->val.thr.count, 600);
    assert_int_equal(g1->val.thr.seconds, 60);
    assert_from(g1, "binding_group \"g\"");
    /* a group value outranks a global regex domain */
    assert_ptr_equal(outbound(c, "b1", "a.example.com", o), g1);
    /* bindings that set their own get their own objects, even with equal values */
    b3 = outbound(c, "b3", NULL, o);
    b4 = outbound(c, "b4", NULL, o);
    assert_ptr_not_equal(b3, b4);
    assert_ptr_not_equal(b3, g1);
    assert_int_equal(b3->val.thr.count, b4->val.thr.count);
    assert_from(b3, "binding_group \"g\" binding \"b3\"");
    /* a regex domain is one object for every domain it matches ... */
    r1 = outbound(c, "top", "a.example.com", o);
    r2 = outbound(c, NULL, "B.Example.Com", o);
    assert_ptr_equal(r1, r2);
    assert_from(r1, "domain \"/\\.example\\.com$/\"");
    /* ... while an exact stanza is its own */
    ex = outbound(c, "top", "exact.example.com", o);
    assert_ptr_not_equal(ex, r1);
    assert_from(ex, "domain \"exact.example.com\"");
    /* a regex domain in a group: one object across its bindings and domains */
    assert_ptr_equal(outbound(c, "h1", "x1.org", o), outbound(c, "h2", "x2.org", o));
    assert_int_equal(outbound(c, "h1", "x1.org", o)->val.thr.count, 5);
    /* nothing set anywhere: the (unset) default */
    assert_true(conf_setting_unset(outbound(c, "h1", "y.org", o)));
    assert_ptr_equal(outbound(c, "h1", "y.org", o), outbound(c, "top", NULL, o));
    conf_unref(c);
}

/* ---- Host scope ---- */

static void
test_host_does_not_inherit(void **state)
{
    struct conf *c = load("Max_Outbound_Connections = 10\n"
                          "Domain \"mx1.example\" { Max_Outbound_Connections = 11 }\n"
                          "Host \"mx1.example\" { }\n"
                          "Host \"mx2.example\" { Max_Outbound_Connections = 2 }\n"
                          "Host \"/^mx[0-9]+\\.re\\.example$/\" { Max_Outbound_Connections = 3 }\n"
                          "Binding_Group \"g\" {\n"
                          "  Max_Outbound_Connections = 13\n"
                          "  Host \"mx2.example\" { Max_Outbound_Connections = 4 }\n"
                          "  Binding \"b\" {\n"
                          "    Max_Outbound_Connections = 12\n"
                          "    Host \"MX2.example\" { Max_Outbound_Connections = 5 }\n"
                          "    Host \"mx3.example\" { }\n"
                          "  }\n"
                          "  Binding \"b2\" { }\n"
                          "}\n");
    static const struct {
        const char *binding;
        const char *host;
        int64_t want; /* -1: NULL (unlimited) */
        const char *from;
    } cases[] = {
        {"b", "mx2.example", 5, "binding_group \"g\" binding \"b\" host \"MX2.example\""},
        {"b2", "mx2.example", 4, "binding_group \"g\" host \"mx2.example\""},
        {NULL, "MX2.EXAMPLE", 2, "host \"mx2.example\""},
        {"b", "mx3.example", -1, NULL}, /* declared in b, sets nothing: not the global Host's */
        {"b", "mx1.example", -1, NULL}, /* not the binding's, group's, domain's or global value */
        {NULL, "mx1.example", -1, NULL},
        {"b", "unknown.example", -1, NULL},
        {NULL, "mx7.re.example", 3, "host \"/^mx[0-9]+\\.re\\.example$/\""},
        {"b", "mx7.re.example", 3, "host \"/^mx[0-9]+\\.re\\.example$/\""},
        {NULL, "mx7.re.example.org", -1, NULL},
        {"nope", "mx2.example", 2, "host \"mx2.example\""},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        const struct conf_setting *st =
            conf_host_get(c, cases[i].binding, cases[i].host, "max_outbound_connections");

        if (cases[i].want < 0) {
            if (st != NULL) {
                print_error("host %s: %lld, wanted unset\n", cases[i].host, (long long)st->val.i);
                fail();
            }
            continue;
        }
        assert_non_null(st);
        assert_int_equal(st->val.i, cases[i].want);
        assert_from(st, cases[i].from);
    }
    conf_unref(c);
}

/* ---- inbound ---- */

enum { I_NP, I_N, I_LP, I_L, I_P, I_PG, I_G, I_LEVELS };

static const char *const i_paths[I_LEVELS] = {
    "esmtp_listener listen \"127.0.0.1:25\" peer \"10.1.0.0/16\"",
    "esmtp_listener listen \"127.0.0.1:25\"",
    "esmtp_listener peer \"10.0.0.0/8\"",
    "esmtp_listener",
    "pathway_group \"pg\" pathway \"p\"",
    "pathway_group \"pg\"",
    "global",
};

static char *
i_config(unsigned mask)
{
    char set[I_LEVELS][48];

    for (unsigned l = 0; l < I_LEVELS; l++) {
        set[l][0] = '\0';
        if (mask & (1u << l)) {
            snprintf(set[l], sizeof(set[l]), "relay_hosts = \"192.0.2.%u\"", l);
        }
    }
    return xasprintf("%s\n"
                     "Pathway_Group \"pg\" {\n"
                     "  %s\n"
                     "  Pathway \"p\" { %s }\n"
                     "}\n"
                     "ESMTP_Listener {\n"
                     "  Pathway = \"p\"\n"
                     "  %s\n"
                     "  Peer \"10.0.0.0/8\" { %s }\n"
                     "  Listen \"127.0.0.1:25\" {\n"
                     "    %s\n"
                     "    Peer \"10.1.0.0/16\" { %s }\n"
                     "  }\n"
                     "}\n",
                     set[I_G], set[I_PG], set[I_P], set[I_L], set[I_LP], set[I_N], set[I_NP]);
}

static void
check_inbound(const struct conf *c, const char *addr, unsigned mask, unsigned skip,
              const char *text)
{
    const struct conf_scope *l = conf_child(c->root, CONF_SCOPE_ESMTP_LISTENER, NULL);
    const struct conf_scope *n = conf_child(l, CONF_SCOPE_LISTEN, NULL);
    struct sockaddr_storage ss;
    struct conf_chain ch;
    const struct conf_setting *st;
    int win = -1;

    for (int lv = I_LEVELS - 1; lv >= 0; lv--) {
        if ((mask & (1u << lv)) && !(skip & (1u << lv))) {
            win = lv;
        }
    }
    if (addr) {
        ss = sa(addr);
    }
    conf_chain_inbound(c, l, n, addr ? (struct sockaddr *)&ss : NULL, &ch);
    st = conf_chain_get_name(c, &ch, "relay_hosts");
    if (win < 0 ? !conf_setting_unset(st) : (st->val.n != 1 || st->val.cidrs[0].addr[3] != win)) {
        print_error("levels %#x, peer %s: wrong value\n%s\n", mask, addr ? addr : "none", text);
        fail();
    }
    assert_from(st, win < 0 ? "default" : i_paths[win]);
}

static void
test_inbound_order_exhaustive(void **state)
{
    (void)state;
    for (unsigned mask = 0; mask < (1u << I_LEVELS); mask++) {
        char *text = i_config(mask);
        struct conf *c = load(text);

        check_inbound(c, "10.1.2.3", mask, 0, text);
        check_inbound(c, "::ffff:10.1.2.3", mask, 0, text);
        check_inbound(c, "10.2.0.1", mask, 1u << I_NP, text);
        check_inbound(c, "11.0.0.1", mask, (1u << I_NP) | (1u << I_LP), text);
        check_inbound(c, NULL, mask, (1u << I_NP) | (1u << I_LP), text);
        check_inbound(c, "2001:db8::1", mask, (1u << I_NP) | (1u << I_LP), text);
        conf_unref(c);
        free(text);
    }
}

static void
test_inbound_peers_and_pathways(void **state)
{
    struct conf *c = load("Pathway \"p1\" { }\n"
                          "Pathway_Group \"pg\" { Pathway \"p2\" { } }\n"
                          "Pathway \"p3\" { }\n"
                          "ESMTP_Listener {\n"
                          "  Pathway = \"p3\"\n"
                          "  Peer \"192.168.0.0/16\" { }\n"
                          "  Listen \"127.0.0.1:25\" {\n"
                          "    Pathway = \"p2\"\n"
                          "    Peer \"10.0.0.0/8\" { }\n"
                          "    Peer \"10.1.2.0/24\" { Pathway = \"p1\" }\n"
                          "    Peer \"10.1.0.0/16\" { }\n"
                          "    Peer \"2001:db8::/32\" { }\n"
                          "    Peer \"2001:db8:1::/48\" { }\n"
                          "  }\n"
                          "  Listen \"[::1]:25\" { }\n"
                          "}\n");
    static const struct {
        const char *addr;
        int listen; /* 0: 127.0.0.1:25, 1: [::1]:25, -1: none */
        const char *chain;
    } cases[] = {
        {"10.1.2.3", 0,
         "esmtp_listener listen \"127.0.0.1:25\" peer \"10.1.2.0/24\" | esmtp_listener listen "
         "\"127.0.0.1:25\" | esmtp_listener | pathway \"p1\" | global"},
        {"::ffff:10.1.2.3", 0,
         "esmtp_listener listen \"127.0.0.1:25\" peer \"10.1.2.0/24\" | esmtp_listener listen "
         "\"127.0.0.1:25\" | esmtp_listener | pathway \"p1\" | global"},
        {"10.1.3.3", 0,
         "esmtp_listener listen \"127.0.0.1:25\" peer \"10.1.0.0/16\" | esmtp_listener listen "
         "\"127.0.0.1:25\" | esmtp_listener | pathway_group \"pg\" pathway \"p2\" | pathway_group "
         "\"pg\" | global"},
        {"10.9.9.9", 0,
         "esmtp_listener listen \"127.0.0.1:25\" peer \"10.0.0.0/8\" | esmtp_listener listen "
         "\"127.0.0.1:25\" | esmtp_listener | pathway_group \"pg\" pathway \"p2\" | pathway_group "
         "\"pg\" | global"},
        {"2001:db8:1::5", 0,
         "esmtp_listener listen \"127.0.0.1:25\" peer \"2001:db8:1::/48\" | esmtp_listener listen "
         "\"127.0.0.1:25\" | esmtp_listener | pathway_group \"pg\" pathway \"p2\" | pathway_group "
         "\"pg\" | global"},
        {"2001:db8:2::5", 0,
         "esmtp_listener listen \"127.0.0.1:25\" peer \"2001:db8::/32\" | esmtp_listener listen "
         "\"127.0.0.1:25\" | esmtp_listener | pathway_group \"pg\" pathway \"p2\" | pathway_group "
         "\"pg\" | global"},
        {"2001:db9::1", 0,
         "esmtp_listener listen \"127.0.0.1:25\" | esmtp_listener | pathway_group \"pg\" pathway "
         "\"p2\" | pathway_group \"pg\" | global"},
        {"192.168.1.1", 0,
         "esmtp_listener listen \"127.0.0.1:25\" | esmtp_listener peer \"192.168.0.0/16\" | "
         "esmtp_listener | pathway_group \"pg\" pathway \"p2\" | pathway_group \"pg\" | global"},
        {"::ffff:192.168.1.1", 1,
         "esmtp_listener listen \"[::1]:25\" | esmtp_listener peer \"192.168.0.0/16\" | "
         "esmtp_listener | pathway \"p3\" | global"},
        {"10.1.2.3", 1,
         "esmtp_listener listen \"[::1]:25\" | esmtp_listener | pathway \"p3\" | global"},
        {"10.1.2.3", -1, "esmtp_listener | pathway \"p3\" | global"},
        {NULL, -1, "esmtp_listener | pathway \"p3\" | global"},
    };
    const struct conf_scope *l = conf_child(c->root, CONF_SCOPE_ESMTP_LISTENER, NULL);
    const struct conf_scope *n[2];
    size_t it = 0;

    (void)state;
    n[0] = conf_child_next(l, CONF_SCOPE_LISTEN, NULL, &it);
    n[1] = conf_child_next(l, CONF_SCOPE_LISTEN, NULL, &it);
    assert_string_equal(n[1]->name, "[::1]:25");
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct sockaddr_storage ss;
        struct conf_chain ch;

        if (cases[i].addr) {
            ss = sa(cases[i].addr);
        }
        conf_chain_inbound(c, l, cases[i].listen < 0 ? NULL : n[cases[i].listen],
                           cases[i].addr ? (struct sockaddr *)&ss : NULL, &ch);
        assert_chain(&ch, cases[i].chain);
    }
    assert_ptr_equal(conf_pathway(c, "p2")->group,
                     conf_child(c->root, CONF_SCOPE_PATHWAY_GROUP, NULL));
    assert_null(conf_pathway(c, "p1")->group);
    assert_null(conf_pathway(c, "nope"));
    conf_unref(c);
}

static void
test_pathway_must_exist(void **state)
{
    struct conf_diags d;
    struct conf *c;
    bool found = false;

    (void)state;
    conf_diags_init(&d);
    c = conf_load_text("t.conf", "ESMTP_Listener {\n  Pathway = \"nope\"\n}\n", &d);
    assert_null(c);
    for (size_t i = 0; i < d.n; i++) {
        if (d.items[i].level == CONF_DIAG_ERROR) {
            assert_string_equal(d.items[i].where, "t.conf:2:13");
            assert_string_equal(d.items[i].msg, "pathway \"nope\" is not declared");
            found = true;
        }
    }
    assert_true(found);
    assert_int_equal(d.errors, 1);
    conf_diags_release(&d);
}

/* ---- chain of every scope kind ---- */

static const struct conf_scope *
find_scope(const struct conf_scope *s, const char *path)
{
    char *p = scope_path(s);
    bool hit = strcmp(p, path) == 0;

    free(p);
    if (hit) {
        return s;
    }
    for (size_t i = 0; i < s->nkids; i++) {
        const struct conf_scope *k = find_scope(s->kids[i], path);

        if (k) {
            return k;
        }
    }
    return NULL;
}

static void
test_chain_of_scope(void **state)
{
    struct conf *c =
        load("Binding_Group \"g\" {\n"
             "  Domain \"d.example\" { }\n"
             "  Binding \"b\" { Domain \"d.example\" { } Domain \"/^r/\" { } Host \"mx\" { } }\n"
             "}\n"
             "Binding \"t\" { Domain \"d.example\" { } }\n"
             "Domain \"d.example\" { }\n"
             "Host \"mx\" { }\n"
             "Pathway_Group \"pg\" { Pathway \"p\" { } }\n"
             "Pathway \"q\" { }\n"
             "ESMTP_Listener {\n"
             "  Pathway = \"q\"\n"
             "  Listen \":25\" { Pathway = \"p\" Peer \"10.0.0.0/8\" { } }\n"
             "  Peer \"192.168.0.0/16\" { }\n"
             "}\n"
             "Control_Listener { Listen \"/tmp/x\" { } }\n"
             "HTTP_Listener { Listen \"127.0.0.1:8080\" { } }\n"
             "Security { }\n"
             "EventLoop \"e\" { }\n"
             "ec_logger \"l\" { }\n");
    static const struct {
        const char *scope;
        const char *chain;
    } cases[] = {
        {"binding_group \"g\" binding \"b\" domain \"d.example\"",
         "binding_group \"g\" binding \"b\" domain \"d.example\" | binding_group \"g\" domain "
         "\"d.example\" | binding_group \"g\" binding \"b\" | binding_group \"g\" | domain "
         "\"d.example\" | global"},
        {"binding_group \"g\" binding \"b\" domain \"/^r/\"",
         "binding_group \"g\" binding \"b\" domain \"/^r/\" | binding_group \"g\" binding \"b\" | "
         "binding_group \"g\" | global"},
        {"binding_group \"g\" domain \"d.example\"",
         "binding_group \"g\" domain \"d.example\" | binding_group \"g\" | domain \"d.example\" | "
         "global"},
        {"binding \"t\" domain \"d.example\"",
         "binding \"t\" domain \"d.example\" | binding \"t\" | binding_group \"default\" | domain "
         "\"d.example\" | global"},
        {"domain \"d.example\"", "domain \"d.example\" | global"},
        {"binding_group \"g\" binding \"b\"",
         "binding_group \"g\" binding \"b\" | binding_group \"g\" | global"},
        {"binding \"t\"", "binding \"t\" | binding_group \"default\" | global"},
        {"binding \"default\"", "binding \"default\" | binding_group \"default\" | global"},
        {"binding_group \"g\"", "binding_group \"g\" | global"},
        {"pathway_group \"pg\" pathway \"p\"",
         "pathway_group \"pg\" pathway \"p\" | pathway_group \"pg\" | global"},
        {"pathway \"q\"", "pathway \"q\" | global"},
        {"pathway_group \"pg\"", "pathway_group \"pg\" | global"},
        {"esmtp_listener listen \":25\" peer \"10.0.0.0/8\"",
         "esmtp_listener listen \":25\" peer \"10.0.0.0/8\" | esmtp_listener listen \":25\" | "
         "esmtp_listener | pathway_group \"pg\" pathway \"p\" | pathway_group \"pg\" | global"},
        {"esmtp_listener listen \":25\"",
         "esmtp_listener listen \":25\" | esmtp_listener | pathway_group \"pg\" pathway \"p\" | "
         "pathway_group \"pg\" | global"},
        {"esmtp_listener peer \"192.168.0.0/16\"",
         "esmtp_listener peer \"192.168.0.0/16\" | esmtp_listener | pathway \"q\" | global"},
        {"esmtp_listener", "esmtp_listener | pathway \"q\" | global"},
        {"control_listener listen \"/tmp/x\"",
         "control_listener listen \"/tmp/x\" | control_listener | global"},
        {"http_listener listen \"127.0.0.1:8080\"",
         "http_listener listen \"127.0.0.1:8080\" | http_listener | global"},
        {"binding_group \"g\" binding \"b\" host \"mx\"",
         "binding_group \"g\" binding \"b\" host \"mx\""},
        {"host \"mx\"", "host \"mx\""},
        {"security", "security"},
        {"eventloop \"e\"", "eventloop \"e\""},
        {"ec_logger \"l\"", "ec_logger \"l\""},
        {"global", "global"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        const struct conf_scope *s = find_scope(c->root, cases[i].scope);
        struct conf_chain ch;

        if (s == NULL) {
            print_error("no scope %s\n", cases[i].scope);
            fail();
        }
        conf_chain_of_scope(c, s, &ch);
        assert_chain(&ch, cases[i].chain);
    }
    /* a domain stanza's own chain is the outbound chain for that binding and domain */
    {
        struct conf_chain a, b;

        conf_chain_of_scope(c, find_scope(c->root, cases[0].scope), &a);
        conf_chain_outbound(c, "b", "d.example", &b);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.s, b.s, a.n * sizeof(a.s[0]));
    }
    conf_unref(c);
}

/* ---- the dump ---- */

static char *
dump(const struct conf *c)
{
    struct buf out;

    buf_init(&out, BUF_UNLIMITED);
    conf_dump(c, &out);
    return buf_steal_cstr(&out);
}

/* The lines of the dump from the one starting with first up to the matching "}" line. */
static char *
dump_block(const char *text, const char *first)
{
    const char *start = strstr(text, first);
    const char *end;
    size_t indent = 0;
    char *closing;

    assert_non_null(start);
    while (start > text && start[-1] != '\n') {
        start--;
    }
    while (start[indent] == ' ') {
        indent++;
    }
    closing = xasprintf("\n%*s}\n", (int)indent, "");
    end = strstr(start, closing);
    assert_non_null(end);
    end += strlen(closing);
    free(closing);
    return xstrndup(start, (size_t)(end - start));
}

static void
assert_block(const char *text, const char *first, const char *want)
{
    char *got = dump_block(text, first);

    if (strcmp(got, want) != 0) {
        print_error("dump block:\n%s\nwanted:\n%s\n", got, want);
        free(got);
        fail();
    }
    free(got);
}

/*
 * Which options are implemented changes as celer grows; the dump marks the
 * others ", not implemented". Blocks are compared without the marker, and
 * the marker is checked against the registry flags.
 */
static char *
strip_unimplemented(const char *text)
{
    static const char mark[] = ", not implemented";
    struct buf out;
    const char *p = text, *hit;

    buf_init(&out, BUF_UNLIMITED);
    while ((hit = strstr(p, mark)) != NULL) {
        buf_append(&out, p, (size_t)(hit - p));
        p = hit + sizeof(mark) - 1;
    }
    buf_append_cstr(&out, p);
    return buf_steal_cstr(&out);
}

/* Every global-block line says ", not implemented" exactly for options flagged so. */
static void
check_unimplemented_marker(const struct conf *c, const char *raw)
{
    int lines = 0;

    for (size_t i = 0; i < conf_options_count; i++) {
        const struct conf_option *o = &conf_options[i];
        const struct conf_setting *st;
        char *start, *line, *end;

        if (o->module || !(o->scopes & S_G)) {
            continue;
        }
        st = conf_global(c, o->name);
        if (conf_setting_unset(st)) {
            continue;
        }
        start = xasprintf("\n%s = ", o->name);
        line = strstr(raw, start);
        assert_non_null(line);
        end = strchr(line + 1, '\n');
        assert_non_null(end);
        if (((o->flags & CONF_OPT_UNIMPL) != 0) !=
            (strncmp(end - 17, ", not implemented", 17) == 0)) {
            print_error("option %s: marker wrong in %.*s\n", o->name, (int)(end - line), line);
            fail();
        }
        lines++;
        free(start);
    }
    assert_true(lines > 100);
}

static void
test_dump(void **state)
{
    struct conf *c = load("Spoolbase = \"/s\"\n"
                          "Max_Outbound_Connections = 5\n"
                          "Binding_Group \"g\" {\n"
                          "  Outbound_Throttle_Messages = \"600/60\"\n"
                          "  Binding \"b1\" { }\n"
                          "  Binding \"b2\" { Outbound_Throttle_Messages = 5 }\n"
                          "  Binding \"b3\" { Domain \"d\" { Retry_Interval = 2h } }\n"
                          "}\n"
                          "Domain \"/^x/\" { Outbound_Throttle_Messages = \"1/2\" }\n"
                          "ec_logger \"l\" { paniclog = \"/p\" }\n");
    char *raw = dump(c);
    char *out = strip_unimplemented(raw);

    (void)state;
    assert_true(strncmp(out,
                        "# celer effective configuration of t.conf\n"
                        "# after includes and fallback; each comment says where the value is "
                        "set\n",
                        100) == 0);
    /* global block: set values with their line, defaults marked */
    assert_non_null(
        strstr(out, "\nspoolbase = \"/s\"                                  # t.conf:1\n"));
    assert_non_null(
        strstr(out, "\nmax_outbound_connections = 5                      # t.conf:2\n"));
    assert_non_null(
        strstr(out, "\nretry_interval = \"1200\"                           # default\n"));
    assert_null(strstr(out, "\noutbound_throttle_messages")); /* unset at top level */
    /* bucket #1 shared by b1, b3 and b3's domain; b2 has its own; the regex domain its own */
    assert_block(
        out, "Binding_Group \"g\" {",
        "Binding_Group \"g\" {  # t.conf:3\n"
        "    outbound_throttle_messages = \"600/60\"         # t.conf:4, throttle bucket #1\n"
        "    Binding \"b1\" {  # t.conf:5\n"
        "        outbound_throttle_messages = \"600/60\"     # from binding_group \"g\" (t.conf:4), throttle bucket #1 shared by reference\n"
        "    }\n"
        "    Binding \"b2\" {  # t.conf:6\n"
        "        outbound_throttle_messages = 5            # t.conf:6, throttle bucket #2\n"
        "    }\n"
        "    Binding \"b3\" {  # t.conf:7\n"
        "        outbound_throttle_messages = \"600/60\"     # from binding_group \"g\" (t.conf:4), throttle bucket #1 shared by reference\n"
        "        Domain \"d\" {  # t.conf:7\n"
        "            outbound_throttle_messages = \"600/60\"  # from binding_group \"g\" (t.conf:4), throttle bucket #1 shared by reference\n"
        "            retry_interval = 2h                   # t.conf:7\n"
        "        }\n"
        "    }\n"
        "}\n");
    assert_block(
        out, "Domain \"/^x/\" {",
        "Domain \"/^x/\" {  # t.conf:9\n"
        "    outbound_throttle_messages = \"1/2\"            # t.conf:9, throttle bucket #3\n"
        "}\n");
    /* a module instance shows its module's options (set or default) and the common ones */
    {
        char *blk = dump_block(out, "ec_logger \"l\" {");

        assert_true(strncmp(blk, "ec_logger \"l\" {  # t.conf:10\n", 29) == 0);
        assert_non_null(
            strstr(blk, "\n    paniclog = \"/p\"                               # t.conf:10\n"));
        assert_non_null(
            strstr(blk, "\n    paniclog_mode = \"0644\"                        # default\n"));
        assert_non_null(
            strstr(blk, "\n    debug_level = \"error\"                         # default\n"));
        assert_non_null(
            strstr(blk, "\n    enabled = \"true\"                              # default\n"));
        assert_null(strstr(blk, "spoolbase"));
        free(blk);
    }
    assert_block(out, "Binding \"default\" {", "Binding \"default\" {  # implicit\n}\n");
    assert_block(out, "Binding_Group \"default\" {",
                 "Binding_Group \"default\" {  # implicit\n}\n");
    check_unimplemented_marker(c, raw);
    free(out);
    free(raw);
    conf_unref(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbound_order_exhaustive),
        cmocka_unit_test(test_outbound_chain),
        cmocka_unit_test(test_exact_before_regex),
        cmocka_unit_test(test_implicit_default),
        cmocka_unit_test(test_throttles_shared),
        cmocka_unit_test(test_host_does_not_inherit),
        cmocka_unit_test(test_inbound_order_exhaustive),
        cmocka_unit_test(test_inbound_peers_and_pathways),
        cmocka_unit_test(test_pathway_must_exist),
        cmocka_unit_test(test_chain_of_scope),
        cmocka_unit_test(test_dump),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
