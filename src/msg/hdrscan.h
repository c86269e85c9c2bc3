/*
 * hdrscan: notes which header fields a message has, as its bytes stream by.
 *
 * Fed the message in chunks of any size, it follows the header section
 * (up to the first empty line, folded lines included, CRLF or bare LF line
 * ends) and records, for up to HDRSCAN_MAX names given at init, whether a
 * field of that name occurs. It stops looking at the end of the header
 * section, so the cost over a large body is one flag test per chunk. No
 * allocation; names are compared case-insensitively.
 */
#ifndef CELER_MSG_HDRSCAN_H
#define CELER_MSG_HDRSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define HDRSCAN_MAX      8
#define HDRSCAN_NAME_MAX 64

struct hdrscan {
    const char *names[HDRSCAN_MAX]; /* borrowed */
    size_t nnames;
    bool found[HDRSCAN_MAX];
    bool done; /* past the header section */
    int state; /* private */
    size_t name_len;
    char name[HDRSCAN_NAME_MAX];
    size_t fields; /* header fields seen */
};

/* names: up to HDRSCAN_MAX field names (static strings). */
void hdrscan_init(struct hdrscan *h, const char *const *names, size_t n);
void hdrscan_feed(struct hdrscan *h, const char *p, size_t len);
/* Whether names[i] was seen. */
static inline bool
hdrscan_found(const struct hdrscan *h, size_t i)
{
    return i < h->nnames && h->found[i];
}

#endif
