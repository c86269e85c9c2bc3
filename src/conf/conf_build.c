/*
 * conf_build: registry checks and scope-tree construction (see conf_build.h).
 */
#include "conf/conf_build.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "conf/conf_value.h"
#include "core/mem.h"

struct conf_builder {
    struct conf *c;
    struct conf_diags *diags;
};

static void conf_build_body(struct conf_builder *b, struct conf_scope *scope,
                            const struct conf_node *node);

/* "Did you mean" for an unknown word; not searched once diagnostics are no longer stored. */
static const char *
conf_build_hint(const struct conf_builder *b, const char *word)
{
    if (b->diags->n >= CONF_DIAG_MAX) {
        return NULL; /* only counted: the message would be dropped */
    }
    return conf_suggest(word, strlen(word));
}

static void
conf_setting_free(void *p)
{
    struct conf_setting *st = p;

    conf_val_release(&st->val);
    free(st);
}

void
conf_scope_free(struct conf_scope *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->nkids; i++) {
        conf_scope_free(s->kids[i]);
    }
    free(s->kids);
    map_release(&s->settings, conf_setting_free);
    pcre2_code_free(s->regex);
    free(s->name);
    free(s->module);
    free(s);
}

static struct conf_scope *
conf_scope_new(const struct conf_scope_def *def, const char *name, const char *module,
               struct conf_scope *parent, struct conf_loc loc)
{
    struct conf_scope *s = XNEW(struct conf_scope);

    s->type = def->type;
    s->def = def;
    s->name = name ? xstrdup(name) : NULL;
    s->module = module ? xstrdup(module) : NULL;
    s->parent = parent;
    s->loc = loc;
    map_init(&s->settings, true);
    if (parent) {
        parent->kids =
            xgrow(parent->kids, &parent->kids_cap, parent->nkids + 1, sizeof(*parent->kids));
        parent->kids[parent->nkids++] = s;
    }
    return s;
}

static bool
conf_name_eq(enum conf_scope_type type, const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    /* domain and host names are case-insensitive; binding names are not */
    if (type == CONF_SCOPE_DOMAIN || type == CONF_SCOPE_HOST) {
        return strcasecmp(a, b) == 0;
    }
    return strcmp(a, b) == 0;
}

static struct conf_scope *
conf_scope_find(struct conf_scope *parent, enum conf_scope_type type, const char *module,
                const char *name)
{
    for (size_t i = 0; i < parent->nkids; i++) {
        struct conf_scope *k = parent->kids[i];

        if (k->type == type && conf_name_eq(type, k->name, name) &&
            (module == NULL || (k->module && strcasecmp(k->module, module) == 0))) {
            return k;
        }
    }
    return NULL;
}

static void
conf_build_option(struct conf_builder *b, struct conf_scope *scope, const struct conf_node *node)
{
    const char *kw = node->keyword;
    bool valid;
    const struct conf_option *opt =
        conf_option_lookup(kw, strlen(kw), scope->type, scope->module, &valid);
    struct conf_setting *st, *old;
    struct buf why;
    char mask[512];

    if (opt == NULL) {
        const char *hint = conf_build_hint(b, kw);

        if (hint) {
            conf_error(b->diags, &node->loc, "unknown option \"%s\" (did you mean \"%s\"?)", kw,
                       hint);
        } else {
            conf_error(b->diags, &node->loc, "unknown option \"%s\"", kw);
        }
        return;
    }
    if (!valid) {
        conf_error(b->diags, &node->loc, "option \"%s\" is not valid in %s scope (valid in: %s)",
                   opt->name, scope->module ? scope->module : scope->def->label,
                   conf_scope_mask_str(opt->scopes, mask, sizeof(mask)));
        return;
    }
    st = XNEW(struct conf_setting);
    st->opt = opt;
    st->loc = node->loc;
    st->scope = scope;
    buf_init(&why, 4096);
    if (conf_val_parse(opt, node->value, &st->val, &why) != 0) {
        /* a malformed value is an error even for an option celer does not act on yet */
        conf_error(b->diags, &node->value->loc, "option \"%s\": %.*s", opt->name,
                   STRV_FMT(buf_data(&why)));
        buf_release(&why);
        free(st);
        return;
    }
    buf_release(&why);
    if (opt->flags & CONF_OPT_UNIMPL) {
        conf_warning(
            b->diags, &node->loc,
            "option \"%s\" is a Momentum option celer does not implement yet; it has no effect",
            opt->name);
    }
    old = map_put(&scope->settings, strv_from_cstr(opt->name), st);
    if (old) {
        conf_warning(
            b->diags, &node->loc,
            "option \"%s\" is set again in this scope; this value replaces the one at %s:%u:%u",
            opt->name, old->loc.file, old->loc.line, old->loc.col);
        conf_setting_free(old);
    }
}

int
conf_listen_parse(const char *name, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *colon;
    char host[INET6_ADDRSTRLEN + 1];
    uint64_t port;
    size_t hlen;

    memset(ss, 0, sizeof(*ss));
    if (name[0] == '/' || (strchr(name, '/') && !strchr(name, ':'))) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;

        if (strlen(name) >= sizeof(un->sun_path)) {
            return CELER_ELIMIT;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, name, strlen(name) + 1);
        *len = sizeof(*un);
        return 0;
    }
    colon = strrchr(name, ':');
    if (colon == NULL || strv_to_u64(strv_from_cstr(colon + 1), 65535, &port) != 0) {
        return CELER_EPARSE;
    }
    hlen = (size_t)(colon - name);
    if (hlen >= 2 && name[0] == '[' && name[hlen - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        if (hlen - 2 >= sizeof(host)) {
            return CELER_EPARSE;
        }
        memcpy(host, name + 1, hlen - 2);
        host[hlen - 2] = '\0';
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
        return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : CELER_EPARSE;
    }
    {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
        if (hlen == 0 || (hlen == 1 && name[0] == '*')) {
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
            return 0;
        }
        if (hlen >= sizeof(host)) {
            return CELER_EPARSE;
        }
        memcpy(host, name, hlen);
        host[hlen] = '\0';
        return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : CELER_EPARSE;
    }
}

static bool
conf_is_regex_name(const char *name)
{
    size_t len = strlen(name);

    return len >= 2 && name[0] == '/' && name[len - 1] == '/';
}

/* Checks an instance name for its scope kind; may fill the scope's regex/cidr. */
static bool
conf_check_name(struct conf_builder *b, const struct conf_node *node, struct conf_scope *s)
{
    const char *name = node->name;

    switch (s->type) {
    case CONF_SCOPE_BINDING:
    case CONF_SCOPE_BINDING_GROUP:
        if (name[0] == '\0' || strpbrk(name, " \t\r\n") ||
            (s->type == CONF_SCOPE_BINDING && strchr(name, ':'))) {
            conf_error(b->diags, &node->name_loc,
                       "%s name \"%s\" must be non-empty without spaces%s", s->def->label, name,
                       s->type == CONF_SCOPE_BINDING ? " or colons" : "");
            return false;
        }
        return true;
    case CONF_SCOPE_DOMAIN:
    case CONF_SCOPE_HOST:
        if (conf_is_regex_name(name)) {
            int code;
            PCRE2_SIZE off;

            s->regex = pcre2_compile((PCRE2_SPTR)name + 1, strlen(name) - 2, PCRE2_CASELESS, &code,
                                     &off, NULL);
            if (s->regex == NULL) {
                PCRE2_UCHAR msg[256];

                pcre2_get_error_message(code, msg, sizeof(msg));
                conf_error(b->diags, &node->name_loc, "bad regular expression %s: %s at offset %zu",
                           name, (const char *)msg, (size_t)off);
                return false;
            }
            return true;
        }
        if (name[0] == '\0' || strpbrk(name, " \t\r\n")) {
            conf_error(b->diags, &node->name_loc, "%s name \"%s\" is not a valid name",
                       s->def->label, name);
            return false;
        }
        return true;
    case CONF_SCOPE_PEER:
        if (conf_cidr_parse(name, &s->cidr) != 0) {
            conf_error(b->diags, &node->name_loc,
                       "peer \"%s\" is not an IP address or CIDR block (a.b.c.d/n or ipv6/n)",
                       name);
            return false;
        }
        return true;
    case CONF_SCOPE_LISTEN: {
        struct sockaddr_storage ss;
        socklen_t len;

        if (conf_listen_parse(name, &ss, &len) != 0) {
            conf_error(
                b->diags, &node->name_loc,
                "listen address \"%s\" is not \"ip:port\", \"[ipv6]:port\", \"*:port\" or \"/unix/path\"",
                name);
            return false;
        }
        return true;
    }
    default:
        return true;
    }
}

/* Bindings and pathways are unique by name across the tree. */
static bool
conf_register_unique(struct conf_builder *b, struct map *m, struct conf_scope *s,
                     const struct conf_node *node)
{
    struct conf_scope *prev = map_get(m, strv_from_cstr(s->name));

    if (prev == NULL) {
        map_put(m, strv_from_cstr(s->name), s);
        return true;
    }
    if (prev == s) {
        return true;
    }
    conf_error(b->diags, &node->loc, "%s \"%s\" is already declared in another scope at %s:%u:%u",
               s->def->label, s->name, prev->loc.file, prev->loc.line, prev->loc.col);
    return false;
}

static struct conf_scope *
conf_open_scope(struct conf_builder *b, struct conf_scope *parent, const struct conf_scope_def *def,
                const char *module, const struct conf_node *node)
{
    struct conf_scope *s = conf_scope_find(parent, def->type, module, node->name);
    bool fresh = s == NULL;

    if (fresh) {
        s = conf_scope_new(def, node->name, module, parent, node->loc);
        if (node->name && !conf_check_name(b, node, s)) {
            return NULL;
        }
    }
    if (def->type == CONF_SCOPE_BINDING) {
        if (!conf_register_unique(b, &b->c->bindings, s, node)) {
            return NULL;
        }
    } else if (def->type == CONF_SCOPE_BINDING_GROUP) {
        map_put(&b->c->binding_groups, strv_from_cstr(s->name), s);
    } else if (def->type == CONF_SCOPE_PATHWAY) {
        if (!conf_register_unique(b, &b->c->pathways, s, node)) {
            return NULL;
        }
    }
    return s;
}

static void
conf_build_scope(struct conf_builder *b, struct conf_scope *parent, const struct conf_node *node)
{
    const char *kw = node->keyword;
    const struct conf_scope_def *def = conf_scope_def_find(kw, strlen(kw));
    const struct conf_module_def *mod = NULL;
    struct conf_scope *s;
    char mask[512];

    if (def == NULL) {
        mod = conf_module_def_find(kw, strlen(kw));
        if (mod == NULL) {
            const char *hint = conf_build_hint(b, kw);

            conf_error(b->diags, &node->loc, "unknown scope or module \"%s\"%s%s%s", kw,
                       hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
            return;
        }
        def = conf_scope_def_get(CONF_SCOPE_MODULE);
    }
    if ((def->parents & CONF_SCOPE_BIT(parent->type)) == 0) {
        conf_error(b->diags, &node->loc, "%s \"%s\" cannot appear inside %s scope (allowed in: %s)",
                   mod ? "module" : "scope", kw,
                   parent->module ? parent->module : parent->def->label,
                   conf_scope_mask_str(def->parents, mask, sizeof(mask)));
        return;
    }
    if (def->naming == CONF_NAME_NONE && node->name) {
        conf_error(b->diags, &node->name_loc, "%s scope takes no name (write %s { ... })",
                   def->keyword, def->keyword);
        return;
    }
    if (def->naming == CONF_NAME_REQUIRED && node->name == NULL) {
        conf_error(b->diags, &node->loc, "%s scope needs a name (write %s \"name\" { ... })",
                   def->keyword, def->keyword);
        return;
    }
    if (mod && !mod->implemented) {
        conf_warning(
            b->diags, &node->loc,
            "module \"%s\" is a Momentum module celer does not implement yet; its configuration is ignored",
            mod->keyword);
        return;
    }
    if (!def->implemented) {
        conf_warning(
            b->diags, &node->loc,
            "%s scope is a Momentum feature celer does not implement yet; its contents are ignored",
            def->keyword);
        return;
    }
    if (mod && mod->singleton && node->name) {
        conf_error(b->diags, &node->name_loc, "module %s takes no instance name", mod->keyword);
        return;
    }
    if (def->type == CONF_SCOPE_CONTROL_LISTENER || def->type == CONF_SCOPE_HTTP_LISTENER) {
        conf_warning(b->diags, &node->loc,
                     "%s is checked but not served yet: celer has no %s so far", def->keyword,
                     def->type == CONF_SCOPE_CONTROL_LISTENER ? "console" : "HTTP API");
    }
    s = conf_open_scope(b, parent, def, mod ? mod->keyword : NULL, node);
    if (s) {
        conf_build_body(b, s, node);
    }
}

static void
conf_build_body(struct conf_builder *b, struct conf_scope *scope, const struct conf_node *node)
{
    for (size_t i = 0; i < node->n; i++) {
        const struct conf_node *kid = node->kids[i];

        if (kid->kind == CONF_NODE_OPTION) {
            conf_build_option(b, scope, kid);
        } else {
            conf_build_scope(b, scope, kid);
        }
    }
}

static struct conf_scope *
conf_implicit(struct conf_builder *b, struct map *m, enum conf_scope_type type)
{
    struct conf_scope *s = map_get(m, STRV_LIT("default"));

    if (s == NULL) {
        s = conf_scope_new(conf_scope_def_get(type), "default", NULL, b->c->root,
                           (struct conf_loc){0});
        s->implicit = true;
        map_put(m, STRV_LIT("default"), s);
    }
    return s;
}

/* Every listener, Listen and Peer that names a pathway must name one that exists. */
static void
conf_check_pathway_refs(struct conf_builder *b, const struct conf_scope *s)
{
    const struct conf_setting *st = conf_scope_get(s, "pathway");

    if (st && st->val.s && map_get(&b->c->pathways, strv_from_cstr(st->val.s)) == NULL) {
        conf_error(b->diags, &st->val.raw->loc, "pathway \"%s\" is not declared", st->val.s);
    }
    for (size_t i = 0; i < s->nkids; i++) {
        conf_check_pathway_refs(b, s->kids[i]);
    }
}

void
conf_build(struct conf *c, struct conf_diags *diags)
{
    struct conf_builder b = {c, diags};
    struct conf_scope *default_group;
    size_t it = 0;
    void *v;

    c->root = conf_scope_new(conf_scope_def_get(CONF_SCOPE_GLOBAL), NULL, NULL, NULL,
                             (struct conf_loc){c->ast->nfiles ? c->ast->files[0] : NULL, 1, 1});
    map_init(&c->bindings, false);
    map_init(&c->binding_groups, false);
    map_init(&c->pathways, false);
    conf_build_body(&b, c->root, c->ast->root);

    default_group = conf_implicit(&b, &c->binding_groups, CONF_SCOPE_BINDING_GROUP);
    conf_implicit(&b, &c->bindings, CONF_SCOPE_BINDING);
    while (map_next(&c->bindings, &it, NULL, &v)) {
        struct conf_scope *bind = v;

        bind->group = bind->parent->type == CONF_SCOPE_BINDING_GROUP ? bind->parent : default_group;
    }
    it = 0;
    while (map_next(&c->pathways, &it, NULL, &v)) {
        struct conf_scope *pw = v;

        pw->group = pw->parent->type == CONF_SCOPE_PATHWAY_GROUP ? pw->parent : NULL;
    }
    conf_check_pathway_refs(&b, c->root);
}
