/*
 * conf: snapshots, fallback chains and lookups (see conf.h).
 */
#include "conf/conf.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <netinet/in.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_build.h"
#include "conf/conf_value.h"
#include "core/mem.h"

/* Parses every registry default into c->defaults (values live in c->default_values). */
static void
conf_parse_defaults(struct conf *c)
{
    c->defaults = xcalloc(conf_options_count, sizeof(*c->defaults));
    c->default_raw = xcalloc(conf_options_count, sizeof(*c->default_raw));
    for (size_t i = 0; i < conf_options_count; i++) {
        const struct conf_option *opt = &conf_options[i];
        struct conf_setting *st = &c->defaults[i];

        st->opt = opt;
        st->val.type = opt->type;
        if (opt->def) {
            struct conf_value *raw = XNEW(struct conf_value);
            struct buf why;

            raw->kind = CONF_VALUE_SCALAR;
            raw->text = xstrdup(opt->def);
            raw->quoted = true;
            c->default_raw[i] = raw;
            buf_init(&why, 1024);
            if (conf_val_parse(opt, raw, &st->val, &why) != 0) {
                st->val = (struct conf_val){.type = CONF_T_ANY, .s = raw->text};
            }
            st->val.raw = raw;
            buf_release(&why);
        }
    }
}

static void
conf_free(struct conf *c)
{
    if (c == NULL) {
        return;
    }
    if (c->defaults) {
        for (size_t i = 0; i < conf_options_count; i++) {
            conf_val_release(&c->defaults[i].val);
            conf_value_free(c->default_raw[i]);
        }
    }
    free(c->defaults);
    free(c->default_raw);
    conf_scope_free(c->root);
    map_release(&c->bindings, NULL);
    map_release(&c->binding_groups, NULL);
    map_release(&c->pathways, NULL);
    conf_ast_free(c->ast);
    free(c->path);
    free(c);
}

static struct conf *
conf_finish(struct conf *c, struct conf_diags *diags)
{
    unsigned before = diags->errors;

    conf_parse_defaults(c);
    conf_build(c, diags);
    if (diags->errors != before || diags->errors != 0) {
        conf_free(c);
        return NULL;
    }
    c->refs = 1;
    return c;
}

struct conf *
conf_load(const char *path, struct conf_diags *diags)
{
    struct conf *c = XNEW(struct conf);

    c->path = xstrdup(path);
    c->ast = conf_parse_file(path, diags);
    return conf_finish(c, diags);
}

struct conf *
conf_load_text(const char *name, const char *text, struct conf_diags *diags)
{
    struct conf *c = XNEW(struct conf);

    c->path = xstrdup(name);
    c->ast = conf_parse_text(name, strv_from_cstr(text), diags);
    return conf_finish(c, diags);
}

struct conf *
conf_ref(struct conf *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void
conf_unref(struct conf *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        conf_free(c);
    }
}

/* ---- scope lookups ---- */

const struct conf_scope *
conf_binding(const struct conf *c, const char *name)
{
    return map_get_cstr(&c->bindings, name ? name : "default");
}

const struct conf_scope *
conf_binding_group(const struct conf *c, const char *name)
{
    return map_get_cstr(&c->binding_groups, name ? name : "default");
}

const struct conf_scope *
conf_pathway(const struct conf *c, const char *name)
{
    return map_get_cstr(&c->pathways, name);
}

const struct conf_scope *
conf_child_next(const struct conf_scope *s, enum conf_scope_type type, const char *module,
                size_t *it)
{
    while (*it < s->nkids) {
        const struct conf_scope *k = s->kids[(*it)++];

        if (k->type == type &&
            (module == NULL || (k->module && strcasecmp(k->module, module) == 0))) {
            return k;
        }
    }
    return NULL;
}

const struct conf_scope *
conf_child(const struct conf_scope *s, enum conf_scope_type type, const char *module)
{
    size_t it = 0;

    return conf_child_next(s, type, module, &it);
}

static bool
conf_regex_match(const struct conf_scope *s, const char *text)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(s->regex, NULL);
    int rc;

    if (md == NULL) {
        return false;
    }
    rc = pcre2_match(s->regex, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Exact names first, then regexes in declaration order. */
static const struct conf_scope *
conf_match_named(const struct conf_scope *s, enum conf_scope_type type, const char *name)
{
    size_t it = 0;
    const struct conf_scope *k;

    if (s == NULL || name == NULL) {
        return NULL;
    }
    while ((k = conf_child_next(s, type, NULL, &it))) {
        if (k->regex == NULL && strcasecmp(k->name, name) == 0) {
            return k;
        }
    }
    it = 0;
    while ((k = conf_child_next(s, type, NULL, &it))) {
        if (k->regex && conf_regex_match(k, name)) {
            return k;
        }
    }
    return NULL;
}

const struct conf_scope *
conf_match_domain(const struct conf_scope *s, const char *domain)
{
    return conf_match_named(s, CONF_SCOPE_DOMAIN, domain);
}

bool
conf_cidr_match(const struct conf_cidr *cidr, const struct sockaddr *sa)
{
    const unsigned char *a;
    unsigned char mapped[16];
    unsigned full, rest;

    if (sa->sa_family == AF_INET && cidr->family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6 && cidr->family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    } else if (sa->sa_family == AF_INET6 && cidr->family == AF_INET &&
               IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        memcpy(mapped, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12, 4);
        a = mapped;
    } else {
        return false;
    }
    full = cidr->prefix / 8;
    rest = cidr->prefix % 8;
    if (full && memcmp(a, cidr->addr, full) != 0) {
        return false;
    }
    if (rest) {
        unsigned char mask = (unsigned char)(0xff00u >> rest);

        return (a[full] & mask) == cidr->addr[full];
    }
    return true;
}

/* The Peer directly inside s with the longest prefix matching sa. */
static const struct conf_scope *
conf_best_peer(const struct conf_scope *s, const struct sockaddr *sa)
{
    const struct conf_scope *best = NULL, *k;
    size_t it = 0;

    while ((k = conf_child_next(s, CONF_SCOPE_PEER, NULL, &it))) {
        if (conf_cidr_match(&k->cidr, sa) && (best == NULL || k->cidr.prefix > best->cidr.prefix)) {
            best = k;
        }
    }
    return best;
}

/* ---- chains ---- */

static void
conf_chain_add(struct conf_chain *ch, const struct conf_scope *s)
{
    if (s && ch->n < CONF_CHAIN_MAX) {
        for (unsigned i = 0; i < ch->n; i++) {
            if (ch->s[i] == s) {
                return;
            }
        }
        ch->s[ch->n++] = s;
    }
}

void
conf_chain_outbound(const struct conf *c, const char *binding, const char *domain,
                    struct conf_chain *out)
{
    const struct conf_scope *b = conf_binding(c, binding);
    const struct conf_scope *g;

    if (b == NULL) {
        b = conf_binding(c, "default");
    }
    g = b->group;
    out->n = 0;
    if (domain) {
        conf_chain_add(out, conf_match_domain(b, domain));
        conf_chain_add(out, conf_match_domain(g, domain));
    }
    conf_chain_add(out, b);
    conf_chain_add(out, g);
    if (domain) {
        conf_chain_add(out, conf_match_domain(c->root, domain));
    }
    conf_chain_add(out, c->root);
}

/* Appends the pathway named along the chain so far, its group, then global. */
static void
conf_chain_finish_inbound(const struct conf *c, struct conf_chain *out)
{
    const struct conf_scope *pw = NULL;

    for (unsigned i = 0; i < out->n && pw == NULL; i++) {
        const struct conf_setting *st = conf_scope_get(out->s[i], "pathway");

        if (st && st->val.s) {
            pw = conf_pathway(c, st->val.s);
        }
    }
    if (pw) {
        conf_chain_add(out, pw);
        conf_chain_add(out, pw->group);
    }
    conf_chain_add(out, c->root);
}

void
conf_chain_inbound(const struct conf *c, const struct conf_scope *listener,
                   const struct conf_scope *listen, const struct sockaddr *peer,
                   struct conf_chain *out)
{
    out->n = 0;
    if (listen && peer) {
        conf_chain_add(out, conf_best_peer(listen, peer));
    }
    conf_chain_add(out, listen);
    if (listener && peer) {
        conf_chain_add(out, conf_best_peer(listener, peer));
    }
    conf_chain_add(out, listener);
    conf_chain_finish_inbound(c, out);
}

static void
conf_chain_of_domain(const struct conf *c, const struct conf_scope *d, struct conf_chain *out)
{
    const struct conf_scope *p = d->parent;
    const char *name = d->regex ? NULL : d->name;

    conf_chain_add(out, d);
    if (p->type == CONF_SCOPE_BINDING) {
        conf_chain_add(out, name ? conf_match_domain(p->group, name) : NULL);
        conf_chain_add(out, p);
        conf_chain_add(out, p->group);
    } else if (p->type == CONF_SCOPE_BINDING_GROUP) {
        conf_chain_add(out, p);
    }
    if (p != c->root && name) {
        conf_chain_add(out, conf_match_domain(c->root, name));
    }
    conf_chain_add(out, c->root);
}

void
conf_chain_of_scope(const struct conf *c, const struct conf_scope *s, struct conf_chain *out)
{
    out->n = 0;
    switch (s->type) {
    case CONF_SCOPE_DOMAIN:
        conf_chain_of_domain(c, s, out);
        return;
    case CONF_SCOPE_BINDING:
        conf_chain_add(out, s);
        conf_chain_add(out, s->group);
        conf_chain_add(out, c->root);
        return;
    case CONF_SCOPE_PATHWAY:
        conf_chain_add(out, s);
        conf_chain_add(out, s->group);
        conf_chain_add(out, c->root);
        return;
    case CONF_SCOPE_PEER:
    case CONF_SCOPE_LISTEN:
    case CONF_SCOPE_ESMTP_LISTENER:
    case CONF_SCOPE_CONTROL_LISTENER:
    case CONF_SCOPE_HTTP_LISTENER:
        for (const struct conf_scope *p = s; p && p->type != CONF_SCOPE_GLOBAL; p = p->parent) {
            conf_chain_add(out, p);
        }
        conf_chain_finish_inbound(c, out);
        return;
    case CONF_SCOPE_HOST:
    case CONF_SCOPE_SECURITY:
    case CONF_SCOPE_EVENTLOOP:
    case CONF_SCOPE_MODULE:
        conf_chain_add(out, s); /* these do not inherit */
        return;
    default:
        conf_chain_add(out, s);
        conf_chain_add(out, c->root);
        return;
    }
}

const struct conf_setting *
conf_scope_get(const struct conf_scope *s, const char *name)
{
    return map_get_cstr(&s->settings, name);
}

const struct conf_setting *
conf_chain_get(const struct conf *c, const struct conf_chain *ch, const struct conf_option *opt)
{
    for (unsigned i = 0; i < ch->n; i++) {
        const struct conf_setting *st = map_get_cstr(&ch->s[i]->settings, opt->name);

        if (st) {
            return st;
        }
    }
    return &c->defaults[conf_option_index(opt)];
}

static const struct conf_option *
conf_known_option(const char *name)
{
    const struct conf_option *opt = conf_option_by_name(name);

    if (opt == NULL) {
        abort(); /* a name missing from the registry is a programming error */
    }
    return opt;
}

const struct conf_setting *
conf_chain_get_name(const struct conf *c, const struct conf_chain *ch, const char *name)
{
    return conf_chain_get(c, ch, conf_known_option(name));
}

const struct conf_setting *
conf_global(const struct conf *c, const char *name)
{
    struct conf_chain ch = {.s = {c->root}, .n = 1};

    return conf_chain_get_name(c, &ch, name);
}

const struct conf_setting *
conf_local_get(const struct conf *c, const struct conf_scope *s, const char *name)
{
    const struct conf_setting *st = conf_scope_get(s, name);
    bool valid;
    const struct conf_option *opt;

    if (st) {
        return st;
    }
    opt = conf_option_lookup(name, strlen(name), s->type, s->module, &valid);
    if (opt == NULL || !valid) {
        abort(); /* not an option of this module: a programming error */
    }
    return &c->defaults[conf_option_index(opt)];
}

const struct conf_setting *
conf_host_get(const struct conf *c, const char *binding, const char *host, const char *name)
{
    const struct conf_scope *b = conf_binding(c, binding);
    const struct conf_scope *where[3];

    if (b == NULL) {
        b = conf_binding(c, "default");
    }
    where[0] = conf_match_named(b, CONF_SCOPE_HOST, host);
    where[1] = conf_match_named(b->group, CONF_SCOPE_HOST, host);
    where[2] = conf_match_named(c->root, CONF_SCOPE_HOST, host);
    for (size_t i = 0; i < 3; i++) {
        const struct conf_setting *st = where[i] ? conf_scope_get(where[i], name) : NULL;

        if (st) {
            return st;
        }
    }
    return NULL;
}

bool
conf_setting_unset(const struct conf_setting *s)
{
    return s->scope == NULL && s->opt->def == NULL;
}

void
conf_setting_render(const struct conf_setting *s, struct buf *out)
{
    if (s->val.raw) {
        conf_value_render(s->val.raw, out);
    } else {
        buf_append_cstr(out, "(unset)");
    }
}

void
conf_scope_path(const struct conf_scope *s, struct buf *out)
{
    const struct conf_scope *stack[16];
    size_t n = 0;

    for (; s && s->type != CONF_SCOPE_GLOBAL && n < 16; s = s->parent) {
        stack[n++] = s;
    }
    if (n == 0) {
        buf_append_cstr(out, "global");
        return;
    }
    for (size_t i = n; i-- > 0;) {
        const struct conf_scope *k = stack[i];

        buf_printf(out, "%s%s", i + 1 < n ? " " : "", k->module ? k->module : k->def->label);
        if (k->name) {
            buf_printf(out, " \"%s\"", k->name);
        }
    }
}
