/*
 * conf_diag: configuration errors and warnings (see conf_diag.h).
 */
#include "conf/conf_diag.h"

#include <stdarg.h>
#include <stdlib.h>

#include "core/mem.h"

void
conf_diags_init(struct conf_diags *d)
{
    *d = (struct conf_diags){0};
}

void
conf_diags_release(struct conf_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].where);
        free(d->items[i].msg);
    }
    free(d->items);
    *d = (struct conf_diags){0};
}

void
conf_diag_add(struct conf_diags *d, enum conf_diag_level level, const struct conf_loc *loc,
              const char *fmt, ...)
{
    struct conf_diag *g;
    va_list ap;
    char *msg;

    if (level == CONF_DIAG_ERROR) {
        d->errors++;
    } else {
        d->warnings++;
    }
    if (d->n >= CONF_DIAG_MAX) {
        return;
    }
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
    }
    va_end(ap);
    d->items = xgrow(d->items, &d->cap, d->n + 1, sizeof(*d->items));
    g = &d->items[d->n++];
    g->level = level;
    g->msg = msg ? msg : xstrdup("(out of memory)");
    if (loc && loc->file) {
        g->where = xasprintf("%s:%u:%u", loc->file, loc->line, loc->col);
    } else {
        g->where = xstrdup("celerd");
    }
}

void
conf_diags_print(const struct conf_diags *d, FILE *f)
{
    for (size_t i = 0; i < d->n; i++) {
        fprintf(f, "%s: %s: %s\n", d->items[i].where,
                d->items[i].level == CONF_DIAG_ERROR ? "error" : "warning", d->items[i].msg);
    }
    if (d->errors + d->warnings > d->n) {
        fprintf(f, "celerd: %u more problems not shown\n",
                d->errors + d->warnings - (unsigned)d->n);
    }
}
