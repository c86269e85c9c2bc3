/*
 * spool_fault: test-only fault injection (see spool_fault.h).
 */
#include "spool/spool_fault.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/strv.h"

static const struct {
    const char *name;
    enum spool_fault_op op;
} spool_fault_ops[] = {
    {"open", SPOOL_FAULT_OPEN},   {"write", SPOOL_FAULT_WRITE},     {"pwrite", SPOOL_FAULT_PWRITE},
    {"fsync", SPOOL_FAULT_FSYNC}, {"dirsync", SPOOL_FAULT_DIRSYNC}, {"unlink", SPOOL_FAULT_UNLINK},
};

static const struct {
    const char *name;
    int err;
} spool_fault_errs[] = {
    {"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EDQUOT", EDQUOT}, {"EROFS", EROFS},
    {"EFBIG", EFBIG},   {"EACCES", EACCES}, {"EPERM", EPERM},   {"EMFILE", EMFILE},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int
spool_fault_parse_op(struct strv s, enum spool_fault_op *op)
{
    for (size_t i = 0; i < ARRAY_LEN(spool_fault_ops); i++) {
        if (strv_eq_cstr(s, spool_fault_ops[i].name)) {
            *op = spool_fault_ops[i].op;
            return 0;
        }
    }
    return CELER_EPARSE;
}

static int
spool_fault_parse_err(struct strv s, int *err)
{
    uint64_t v;

    for (size_t i = 0; i < ARRAY_LEN(spool_fault_errs); i++) {
        if (strv_eq_cstr(s, spool_fault_errs[i].name)) {
            *err = -spool_fault_errs[i].err;
            return 0;
        }
    }
    if (strv_to_u64(s, 4095, &v) != 0 || v == 0) {
        return CELER_EPARSE;
    }
    *err = -(int)v;
    return 0;
}

/* "op:ERR[:after=N][:count=M]" */
static int
spool_fault_parse_rule(struct strv s, struct spool_fault_rule *r)
{
    struct strv part;

    r->after = 0;
    r->count = UINT64_MAX;
    r->calls = 0;
    if (spool_fault_parse_op(strv_split(&s, ':'), &r->op) != 0 ||
        spool_fault_parse_err(strv_split(&s, ':'), &r->err) != 0) {
        return CELER_EPARSE;
    }
    while (s.len > 0) {
        part = strv_split(&s, ':');
        if (strv_has_prefix(part, STRV_LIT("after="))) {
            if (strv_to_u64(strv_from(part, 6), UINT64_MAX - 1, &r->after) != 0) {
                return CELER_EPARSE;
            }
        } else if (strv_has_prefix(part, STRV_LIT("count="))) {
            if (strv_to_u64(strv_from(part, 6), UINT64_MAX - 1, &r->count) != 0) {
                return CELER_EPARSE;
            }
        } else {
            return CELER_EPARSE;
        }
    }
    return 0;
}

void
spool_fault_init(struct spool_fault *f)
{
    atomic_init(&f->nrules, 0);
    pthread_mutex_init(&f->lock, NULL);
}

void
spool_fault_release(struct spool_fault *f)
{
    pthread_mutex_destroy(&f->lock);
}

int
spool_fault_parse(struct spool_fault *f, const char *spec)
{
    struct strv s = spec ? strv_from_cstr(spec) : STRV_NULL;
    unsigned n = 0;
    int err = 0;

    pthread_mutex_lock(&f->lock);
    atomic_store(&f->nrules, 0);
    while (s.len > 0) {
        if (n == SPOOL_FAULT_RULES_MAX ||
            spool_fault_parse_rule(strv_split(&s, ','), &f->rules[n]) != 0) {
            err = CELER_EPARSE;
            n = 0;
            break;
        }
        n++;
    }
    atomic_store(&f->nrules, n);
    pthread_mutex_unlock(&f->lock);
    return err;
}

int
spool_fault_hit(struct spool_fault *f, enum spool_fault_op op)
{
    int err = 0;

    pthread_mutex_lock(&f->lock);
    for (unsigned i = 0; i < atomic_load(&f->nrules) && err == 0; i++) {
        struct spool_fault_rule *r = &f->rules[i];

        if (r->op != op) {
            continue;
        }
        if (r->calls >= r->after && r->calls - r->after < r->count) {
            err = r->err;
        }
        r->calls++;
    }
    pthread_mutex_unlock(&f->lock);
    return err;
}
