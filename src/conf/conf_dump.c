/*
 * conf_dump: the effective configuration as text (celerd --dump-config).
 *
 * Prints the global scope with every option that has a value (set or
 * default), then every scope of the tree in declaration order with the
 * options it sets and the ones it inherits from a scope other than global
 * (those are already shown in the global block), each with a comment saying
 * where the value comes from. A throttle inherited by several scopes is one
 * shared bucket; the dump numbers buckets so the sharing is visible.
 */
#include "conf/conf.h"

#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

struct conf_dumper {
    const struct conf *c;
    struct buf *out;
    const struct conf_setting **buckets; /* throttle settings seen, by bucket number - 1 */
    size_t nbuckets;
    size_t buckets_cap;
};

static size_t
conf_dump_bucket(struct conf_dumper *d, const struct conf_setting *st)
{
    for (size_t i = 0; i < d->nbuckets; i++) {
        if (d->buckets[i] == st) {
            return i + 1;
        }
    }
    d->buckets = xgrow(d->buckets, &d->buckets_cap, d->nbuckets + 1, sizeof(*d->buckets));
    d->buckets[d->nbuckets++] = st;
    return d->nbuckets;
}

static void
conf_dump_indent(struct buf *out, unsigned depth)
{
    for (unsigned i = 0; i < depth; i++) {
        buf_append(out, "    ", 4);
    }
}

static void
conf_dump_setting(struct conf_dumper *d, const struct conf_scope *here,
                  const struct conf_setting *st, unsigned depth)
{
    struct buf line;
    size_t col;

    buf_init(&line, BUF_UNLIMITED);
    conf_dump_indent(&line, depth);
    buf_printf(&line, "%s = ", st->opt->name);
    conf_setting_render(st, &line);
    col = buf_len(&line);
    while (col++ < 48) {
        buf_append(&line, " ", 1);
    }
    buf_append_cstr(&line, "  # ");
    if (st->scope == NULL) {
        buf_append_cstr(&line, "default");
    } else if (st->scope == here) {
        buf_printf(&line, "%s:%u", st->loc.file, st->loc.line);
    } else {
        buf_append_cstr(&line, "from ");
        conf_scope_path(st->scope, &line);
        buf_printf(&line, " (%s:%u)", st->loc.file, st->loc.line);
    }
    if (st->opt->type == CONF_T_THROTTLE && st->scope) {
        buf_printf(&line, ", throttle bucket #%zu%s", conf_dump_bucket(d, st),
                   st->scope != here ? " shared by reference" : "");
    }
    if (st->opt->flags & CONF_OPT_UNIMPL) {
        buf_append_cstr(&line, ", not implemented");
    }
    buf_append(&line, "\n", 1);
    buf_append_strv(d->out, buf_data(&line));
    buf_release(&line);
}

static bool
conf_dump_wanted(const struct conf_option *opt, const struct conf_scope *s)
{
    if (s->type == CONF_SCOPE_MODULE) {
        return (opt->scopes & S_MOD) &&
               (opt->module == NULL || (s->module && strcmp(opt->module, s->module) == 0));
    }
    return (opt->scopes & CONF_SCOPE_BIT(s->type)) != 0;
}

static void
conf_dump_scope(struct conf_dumper *d, const struct conf_scope *s, unsigned depth)
{
    const struct conf *c = d->c;
    struct conf_chain ch;

    if (s->type != CONF_SCOPE_GLOBAL) {
        conf_dump_indent(d->out, depth - 1);
        buf_append_cstr(d->out, s->module ? s->module : s->def->keyword);
        if (s->name) {
            buf_printf(d->out, " \"%s\"", s->name);
        }
        buf_append_cstr(d->out, " {");
        if (s->implicit) {
            buf_append_cstr(d->out, "  # implicit");
        } else if (s->loc.file) {
            buf_printf(d->out, "  # %s:%u", s->loc.file, s->loc.line);
        }
        buf_append(d->out, "\n", 1);
    }
    conf_chain_of_scope(c, s, &ch);
    for (size_t i = 0; i < conf_options_count; i++) {
        const struct conf_option *opt = &conf_options[i];
        const struct conf_setting *st;

        if (!conf_dump_wanted(opt, s)) {
            continue;
        }
        st = conf_chain_get(c, &ch, opt);
        if (s->type == CONF_SCOPE_GLOBAL || s->type == CONF_SCOPE_MODULE ||
            s->type == CONF_SCOPE_SECURITY || s->type == CONF_SCOPE_EVENTLOOP) {
            if (conf_setting_unset(st)) {
                continue;
            }
        } else if (st->scope == NULL || st->scope == c->root) {
            continue; /* shown in the global block */
        }
        conf_dump_setting(d, s, st, depth);
    }
    for (size_t i = 0; i < s->nkids; i++) {
        conf_dump_scope(d, s->kids[i], depth + 1);
    }
    if (s->type != CONF_SCOPE_GLOBAL) {
        conf_dump_indent(d->out, depth - 1);
        buf_append_cstr(d->out, "}\n");
    }
}

void
conf_dump(const struct conf *c, struct buf *out)
{
    struct conf_dumper d = {.c = c, .out = out};

    buf_printf(out, "# celer effective configuration of %s\n", c->path);
    buf_append_cstr(out,
                    "# after includes and fallback; each comment says where the value is set\n");
    conf_dump_scope(&d, c->root, 0);
    free(d.buckets);
}
