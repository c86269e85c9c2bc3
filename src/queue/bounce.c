/*
 * bounce: the simple bounce sent to the sender when recipients fail for
 * good (a full RFC 3464 DSN comes with the bounce work).
 *
 * The bounce is a new message from the null sender to the original sender,
 * written to the spool like any other (protocol "internal") and queued when
 * durable. It lists each failed recipient with the reply that failed it and
 * quotes the original message's headers. Bounces are never bounced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "queue/queue_int.h"

#define BOUNCE_HEADERS_MAX (64 * 1024)

/* Appends the header section of the original (read from the spool), at most BOUNCE_HEADERS_MAX. */
static void
bounce_quote_headers(struct spool *spool, const struct qmsg *m, struct buf *out)
{
    int fd = spool_open_message(spool, m->id);
    char *tmp;
    size_t want = (size_t)(m->prepend_len + m->body_len);
    ssize_t n1, n2 = 0;
    const char *end;

    if (fd < 0) {
        buf_append_cstr(out, "(the original message could not be read)\r\n");
        return;
    }
    if (want > BOUNCE_HEADERS_MAX) {
        want = BOUNCE_HEADERS_MAX;
    }
    tmp = xmalloc(want + 1);
    n1 = pread(fd, tmp, want < m->prepend_len ? want : m->prepend_len, (off_t)qmsg_prepend_off(m));
    if (n1 >= 0 && (size_t)n1 < want) {
        n2 = pread(fd, tmp + n1, want - (size_t)n1, (off_t)m->body_off);
    }
    (void)close(fd); /* read-only */
    if (n1 < 0 || n2 < 0) {
        free(tmp);
        buf_append_cstr(out, "(the original message could not be read)\r\n");
        return;
    }
    tmp[n1 + n2] = '\0';
    end = memmem(tmp, (size_t)(n1 + n2), "\r\n\r\n", 4);
    buf_append(out, tmp, end ? (size_t)(end - tmp) + 2 : (size_t)(n1 + n2));
    free(tmp);
}

struct bounce_commit {
    struct qloop *ql;
};

static void
bounce_committed(struct spool_writer *w, int err, void *arg)
{
    struct bounce_commit *bc = arg;

    if (err != 0) {
        log_error("bounce_failed error=\"%s\"", err_str(err));
    } else if (!bc->ql->stopping) {
        struct reception_msg m = {
            .id = spool_writer_id_text(w),
            .sid = spool_writer_id(w),
            .env = spool_writer_envelope(w),
            .body_off = spool_writer_body_off(w),
            .body_len = spool_writer_body_len(w),
            .prepend = spool_writer_prepend(w),
        };

        m.size = m.body_len + m.prepend.len;
        queue_submit(bc->ql->loop, &m, bc->ql->q);
    }
    free(bc);
}

void
bounce_generate(struct qloop *ql, const struct qmsg *m, const uint32_t *failed,
                const char *const *reasons, uint32_t n, const char *mailerdaemon)
{
    struct queue *q = ql->q;
    struct spool_rcpt rcpt = {.addr = strv_from_cstr(qmsg_str(m, m->sender))};
    struct spool_envelope env = {
        .ctime_us = clock_wall_us(),
        .sender = STRV_LIT(""),
        .rcpts = &rcpt,
        .rcpt_count = 1,
        .protocol = STRV_LIT("internal"),
    };
    struct spool_writer *w;
    struct bounce_commit *bc;
    char id[SPOOL_ID_SIZE], date[64];
    struct buf text;
    time_t now = time(NULL);
    struct tm tm;
    int err = 0;

    w = spool_writer_begin(q->o.spool, &env, id, &err);
    if (w == NULL) {
        log_error("bounce_failed error=\"%s\"", err_str(err));
        return;
    }
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    buf_init(&text, BUF_UNLIMITED);
    buf_printf(&text,
               "From: Mail Delivery System <%s>\r\nTo: <%s>\r\n"
               "Subject: Undelivered Mail Returned to Sender\r\nDate: %s\r\n"
               "Message-ID: <bounce.%s@%s>\r\nAuto-Submitted: auto-replied\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               "This is the mail system at %s.\r\n\r\n"
               "Your message could not be delivered to the following recipients:\r\n\r\n",
               mailerdaemon, qmsg_str(m, m->sender), date, id, q->hostname, q->hostname);
    for (uint32_t i = 0; i < n; i++) {
        buf_printf(&text, "<%s>: %s\r\n", qmsg_rcpt_addr(m, failed[i]), reasons[i]);
    }
    buf_append_cstr(&text, "\r\n----- The headers of your message -----\r\n\r\n");
    bounce_quote_headers(q->o.spool, m, &text);
    err = spool_writer_write(w, buf_data(&text).ptr, buf_len(&text));
    buf_release(&text);
    if (err == 0) {
        err = spool_writer_finish(w, STRV_LIT(""));
    }
    if (err != 0) {
        log_error("bounce_failed error=\"%s\"", err_str(err));
        spool_writer_abort(w);
        return;
    }
    log_info("bounce_created mid=%s for=%s failed=%u", id, qmsg_str(m, m->sender), n);
    bc = XNEW(struct bounce_commit);
    bc->ql = ql;
    spool_writer_commit(w, ql->loop, bounce_committed, bc);
}
