/*
 * hdrscan: header-field presence scanner (see hdrscan.h).
 */
#include "msg/hdrscan.h"

#include <string.h>
#include <strings.h>

enum {
    HDRSCAN_BOL,    /* at the beginning of a line */
    HDRSCAN_BOL_CR, /* a CR at the beginning of a line: maybe the empty line */
    HDRSCAN_NAME,   /* reading a field name */
    HDRSCAN_SKIP,   /* the rest of the line is not a field name */
};

void
hdrscan_init(struct hdrscan *h, const char *const *names, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->nnames = n < HDRSCAN_MAX ? n : HDRSCAN_MAX;
    for (size_t i = 0; i < h->nnames; i++) {
        h->names[i] = names[i];
    }
    h->state = HDRSCAN_BOL;
}

static void
hdrscan_end_name(struct hdrscan *h)
{
    h->fields++;
    for (size_t i = 0; i < h->nnames; i++) {
        if (strlen(h->names[i]) == h->name_len &&
            strncasecmp(h->names[i], h->name, h->name_len) == 0) {
            h->found[i] = true;
        }
    }
}

static void
hdrscan_step(struct hdrscan *h, char c)
{
    switch (h->state) {
    case HDRSCAN_BOL:
        if (c == '\n') {
            h->done = true; /* an empty line ended by a bare LF */
        } else if (c == '\r') {
            h->state = HDRSCAN_BOL_CR;
        } else if (c == ' ' || c == '\t') {
            h->state = HDRSCAN_SKIP; /* a folded continuation */
        } else {
            h->state = HDRSCAN_NAME;
            h->name_len = 0;
            h->name[h->name_len++] = c;
        }
        return;
    case HDRSCAN_BOL_CR:
        if (c == '\n') {
            h->done = true;
        } else {
            h->state = HDRSCAN_SKIP;
        }
        return;
    case HDRSCAN_NAME:
        if (c == ':') {
            hdrscan_end_name(h);
            h->state = HDRSCAN_SKIP;
        } else if (c == '\n') {
            h->state = HDRSCAN_BOL; /* a line without a colon: not a field */
        } else if (c != ' ' && c != '\t' && h->name_len < HDRSCAN_NAME_MAX) {
            h->name[h->name_len++] = c;
        } else if (c != ' ' && c != '\t') {
            h->state = HDRSCAN_SKIP; /* too long to be a name we look for */
        }
        return;
    default:
        if (c == '\n') {
            h->state = HDRSCAN_BOL;
        }
        return;
    }
}

void
hdrscan_feed(struct hdrscan *h, const char *p, size_t len)
{
    for (size_t i = 0; i < len && !h->done; i++) {
        hdrscan_step(h, p[i]);
    }
}
