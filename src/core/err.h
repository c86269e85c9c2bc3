/*
 * err: celer's one error convention.
 *
 * Every fallible function returns int: 0 on success, -errno for system errors,
 * or a negative CELER_E* code for our own failures. The CELER_E* codes live
 * far below any errno value so the two never collide. err_str() names either.
 */
#ifndef CELER_CORE_ERR_H
#define CELER_CORE_ERR_H

#define CELER_WUR __attribute__((warn_unused_result))

enum celer_err {
    CELER_EBASE = -10000,
    CELER_EPARSE = CELER_EBASE - 1,    /* malformed input */
    CELER_ELIMIT = CELER_EBASE - 2,    /* a configured or hard limit was hit */
    CELER_ENOTFOUND = CELER_EBASE - 3, /* lookup found nothing */
    CELER_ECONFIG = CELER_EBASE - 4,   /* configuration is invalid */
    CELER_ECORRUPT = CELER_EBASE - 5,  /* on-disk data failed its checks */
    CELER_ECLOSED = CELER_EBASE - 6,   /* peer or object already closed */
    CELER_ETIMEOUT = CELER_EBASE - 7,  /* an operation timed out */
    CELER_EPROTO = CELER_EBASE - 8,    /* peer violated the protocol */
    CELER_ETLS = CELER_EBASE - 9,      /* TLS failure */
    CELER_EDNS = CELER_EBASE - 10,     /* DNS failure */
    CELER_EEXISTS = CELER_EBASE - 11,  /* already exists */
    CELER_EBUSY = CELER_EBASE - 12,    /* resource busy, try later */
    CELER_ELAST = CELER_EBASE - 13,
};

/* A static, human-readable description of err (0, -errno or CELER_E*). */
const char *err_str(int err);

#endif
