/*
 * qmsg: a queued message as the delivery engine keeps it in memory.
 *
 * Only metadata stays resident: the spool id, where the stored bytes are in
 * the spool file, the envelope (sender, recipients with their DSN
 * parameters), flags, and each recipient's state. Strings live in one blob
 * allocated with the message, so a message costs one allocation plus its
 * delivery entries (queue.h). The body is read back from the spool when a
 * message is sent.
 *
 * A message may have recipients in several domains, each domain queue on
 * its own loop; the entries share the message. Recipient states and the
 * reference count may therefore change from several loops: state changes
 * go through qmsg_lock()/qmsg_unlock() (a mutex, uncontended in practice),
 * the count is atomic. The last qmsg_unref() frees the message.
 */
#ifndef CELER_QUEUE_QMSG_H
#define CELER_QUEUE_QMSG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "spool/spool_format.h"
#include "spool/spool_id.h"

enum qmsg_flags {
    QMSG_8BIT = 1u << 0,
    QMSG_BINARY = 1u << 1,
    QMSG_SMTPUTF8 = 1u << 2,
    QMSG_PRIORITY = 1u << 3,
    QMSG_RET_FULL = 1u << 4,
    QMSG_RET_HDRS = 1u << 5,
    QMSG_BOUNCE = 1u << 6, /* a bounce we generated: never bounce it again */
};

struct qrcpt {
    uint32_t addr;       /* offset into the message's strings */
    uint32_t orcpt_type; /* offset, or 0 for none */
    uint32_t orcpt;      /* offset */
    uint8_t notify;      /* SPOOL_NOTIFY_* */
    uint8_t state;       /* enum spool_rcpt_state */
};

struct qmsg {
    struct spool_id id;
    atomic_uint refs;
    uint32_t flags;
    pthread_mutex_t lock;
    int64_t ctime_us;  /* reception */
    uint64_t body_off; /* stored bytes in the spool file */
    uint64_t body_len;
    uint32_t prepend_len; /* the PREPEND record's payload follows the body (spool-format.md) */
    uint32_t nrcpts;
    uint32_t pending;   /* recipients not yet final */
    uint32_t sender;    /* offset into strings */
    uint32_t envid;     /* offset, 0 for none */
    uint32_t source_ip; /* offset */
    /* progress appends in flight (guarded by lock): the file is removed only after
     * the last one, never under it (its inode may be reused at once, spool_recycle.h) */
    uint16_t appending;
    bool remove_when_appended; /* guarded by lock */
    char *strings;             /* owned: every string, NUL-terminated; offset 0 is "" */
    struct qrcpt rcpts[];
};

/* Builds a message from an envelope (reception or recovery); progress may be NULL. */
struct qmsg *qmsg_new(struct spool_id id, const struct spool_envelope *env,
                      const struct spool_rcpt_progress *progress, uint64_t body_off,
                      uint64_t body_len, uint32_t prepend_len);
void qmsg_ref(struct qmsg *m);
/* Drops a reference; true when it was the last (the message is freed). */
bool qmsg_unref(struct qmsg *m);

static inline const char *
qmsg_str(const struct qmsg *m, uint32_t off)
{
    return m->strings + off;
}

static inline const char *
qmsg_rcpt_addr(const struct qmsg *m, uint32_t i)
{
    return m->strings + m->rcpts[i].addr;
}

/* The domain of recipient i (after the last '@'; "" if none). */
const char *qmsg_rcpt_domain(const struct qmsg *m, uint32_t i);
/* Bytes of the message as sent: the prepended headers plus the stored body. */
uint64_t qmsg_size(const struct qmsg *m);
/* Offset of the prepended headers in the spool file. */
uint64_t qmsg_prepend_off(const struct qmsg *m);
/* The length of m's spool file up to and including END (spool_remove()). */
uint64_t qmsg_file_len(const struct qmsg *m);
/* Memory held by the message (for `memory` statistics). */
size_t qmsg_footprint(const struct qmsg *m);

void qmsg_lock(struct qmsg *m);
void qmsg_unlock(struct qmsg *m);
/* Marks recipient i final (DELIVERED or FAILED); returns the recipients still pending. Locked. */
uint32_t qmsg_settle(struct qmsg *m, uint32_t i, enum spool_rcpt_state state);

#endif
