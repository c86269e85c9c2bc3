/*
 * mainlog: Momentum's mainlog and rejectlog formats (see mainlog.h).
 */
#include "log/mainlog.h"

#include <stdio.h>
#include <string.h>

/* Appends s with CR and LF replaced by spaces (the only mainlog escaping). */
static void
mainlog_field(struct buf *out, struct strv s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];

        buf_append(out, (c == '\r' || c == '\n') ? " " : &s.ptr[i], 1);
    }
}

static void
mainlog_cfield(struct buf *out, const char *s)
{
    mainlog_field(out, strv_from_cstr(s ? s : ""));
}

static void
mainlog_head(struct buf *out, const struct mainlog_head *h, const char *type)
{
    buf_printf(out, "%lld@", (long long)h->ts);
    mainlog_cfield(out, h->msgid);
    buf_append(out, "@", 1);
    mainlog_cfield(out, h->batchid);
    buf_append(out, "@", 1);
    mainlog_cfield(out, h->connid);
    buf_printf(out, "@%s", type);
}

/* "local@domain" as two fields "local@domain"; an address without '@' has an empty domain. */
static void
mainlog_address(struct buf *out, struct strv addr)
{
    ptrdiff_t at = strv_rchr(addr, '@');

    buf_append(out, "@", 1);
    if (at < 0) {
        mainlog_field(out, addr);
        buf_append(out, "@", 1);
        return;
    }
    mainlog_field(out, strv_sub(addr, 0, (size_t)at));
    buf_append(out, "@", 1);
    mainlog_field(out, strv_from(addr, (size_t)at + 1));
}

void
mainlog_format_reception(struct buf *out, const struct mainlog_head *h,
                         const struct mainlog_reception *r)
{
    mainlog_head(out, h, "R");
    mainlog_address(out, r->rcpt);
    mainlog_address(out, r->sender);
    buf_append(out, "@", 1);
    mainlog_cfield(out, r->ip);
    buf_printf(out, "@%llu@", (unsigned long long)r->size);
    mainlog_cfield(out, r->protocol);
    buf_append(out, "@", 1);
    mainlog_cfield(out, r->binding_group);
    buf_append(out, "@", 1);
    mainlog_cfield(out, r->binding);
}

void
mainlog_format_delivery(struct buf *out, const struct mainlog_head *h, char type,
                        const struct mainlog_delivery *d)
{
    char t[2] = {type, '\0'};

    mainlog_head(out, h, t);
    buf_append(out, "@", 1);
    mainlog_cfield(out, d->domain);
    buf_printf(out, "@%llu@", (unsigned long long)d->size);
    mainlog_cfield(out, d->binding_group);
    buf_append(out, "@", 1);
    mainlog_cfield(out, d->binding);
    if (type == 'D' || type == 'X') {
        buf_printf(out, "@%u@%.3f@", d->retries, d->seconds);
        mainlog_cfield(out, d->remote_ip);
        return;
    }
    buf_printf(out, "@%d@%u@%.3f@", (int)d->stage, d->retries, d->seconds);
    mainlog_cfield(out, d->remote_ip);
    buf_append(out, "@", 1);
    mainlog_field(out, d->response);
}

void
mainlog_format_heartbeat(struct buf *out, int64_t ts)
{
    buf_printf(out, "%lld@@@@M1", (long long)ts);
}

/* Appends s escaped for a quoted rejectlog value. */
static void
rejectlog_escape(struct buf *out, struct strv s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];

        if (c == '"' || c == '\\') {
            buf_printf(out, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            buf_printf(out, "\\x%02x", c);
        } else {
            buf_append(out, &s.ptr[i], 1);
        }
    }
}

static void
rejectlog_kv(struct buf *out, const char *key, const char *value)
{
    buf_printf(out, " %s=\"", key);
    rejectlog_escape(out, strv_from_cstr(value ? value : ""));
    buf_append(out, "\"", 1);
}

void
rejectlog_format(struct buf *out, const struct rejectlog_entry *e)
{
    buf_printf(out, "%lld:", (long long)e->ts);
    rejectlog_kv(out, "R", e->remote);
    rejectlog_kv(out, "L", e->local);
    rejectlog_kv(out, "C", e->connid);
    rejectlog_kv(out, "PATH", e->pathway);
    rejectlog_kv(out, "PATH_GRP", e->pathway_group);
    rejectlog_kv(out, "P", e->phase);
    buf_printf(out, " E=%d M=%s CTXCONN=[", e->code, e->module ? e->module : "core");
    rejectlog_escape(out, e->ctxconn);
    buf_append(out, "] CTXMESS=[", 11);
    rejectlog_escape(out, e->ctxmess);
    buf_append(out, "] ", 2);
    rejectlog_escape(out, e->reason);
}

void
rejectlog_format_heartbeat(struct buf *out, int64_t ts)
{
    buf_printf(out, "%lld: Marker 1", (long long)ts);
}
