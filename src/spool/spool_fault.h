/*
 * spool_fault: test-only fault injection for the file spool's system calls.
 *
 * A real small file system cannot always be mounted where tests run, so the
 * file spool routes its open/write/pwrite/fsync/directory-sync calls through
 * spool_fault_check(), which can make chosen calls fail with a chosen errno.
 * The rules come from the environment variable CELER_SPOOL_FAULT, read once
 * by spool_open(), or from spool_set_fault() in a test:
 *
 *   rule[,rule...]     at most SPOOL_FAULT_RULES_MAX rules
 *   rule = op:ERR[:after=N][:count=M]
 *   op   = open | write | pwrite | fsync | dirsync | unlink
 *   ERR  = ENOSPC | EIO | EDQUOT | EROFS | EFBIG | EACCES | EPERM | EMFILE
 *          or a decimal errno value
 *
 * The first N calls of op succeed (default 0), the next M fail with ERR
 * (default: every later call), then calls succeed again. "write" counts
 * every write()/writev() of message or PROGRESS bytes, "pwrite" the BODY
 * header patch, "fsync" every file fsync/fdatasync, "dirsync" every
 * directory fsync, "open" every message file creation, "unlink" every
 * removal. A failing call does nothing and returns -ERR.
 *
 * Cost when no rule is set: one relaxed atomic load and a branch per call.
 * With rules set, a mutex guards them, so any thread may hit a rule while a
 * test replaces the rules.
 */
#ifndef CELER_SPOOL_SPOOL_FAULT_H
#define CELER_SPOOL_SPOOL_FAULT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/err.h"

#define SPOOL_FAULT_ENV       "CELER_SPOOL_FAULT"
#define SPOOL_FAULT_RULES_MAX 4

enum spool_fault_op {
    SPOOL_FAULT_OPEN,
    SPOOL_FAULT_WRITE,
    SPOOL_FAULT_PWRITE,
    SPOOL_FAULT_FSYNC,
    SPOOL_FAULT_DIRSYNC,
    SPOOL_FAULT_UNLINK,
};

struct spool_fault_rule {
    enum spool_fault_op op;
    int err;        /* -errno to return */
    uint64_t after; /* calls that succeed first */
    uint64_t count; /* calls that then fail; UINT64_MAX = all */
    uint64_t calls;
};

struct spool_fault {
    atomic_uint nrules;   /* 0: injection off (the fast path) */
    pthread_mutex_t lock; /* guards rules */
    struct spool_fault_rule rules[SPOOL_FAULT_RULES_MAX];
};

/* No rules. */
void spool_fault_init(struct spool_fault *f);
void spool_fault_release(struct spool_fault *f);

/*
 * Replaces the rules with spec (NULL or "" clears them). CELER_EPARSE for a
 * malformed spec, which leaves injection off. Thread-safe.
 */
int spool_fault_parse(struct spool_fault *f, const char *spec) CELER_WUR;
/* The slow path of spool_fault_check(). */
int spool_fault_hit(struct spool_fault *f, enum spool_fault_op op);

/* 0, or the -errno the next call of op must fail with. */
static inline int
spool_fault_check(struct spool_fault *f, enum spool_fault_op op)
{
    if (__builtin_expect(atomic_load_explicit(&f->nrules, memory_order_relaxed) == 0, 1)) {
        return 0;
    }
    return spool_fault_hit(f, op);
}

#endif
