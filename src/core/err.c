/*
 * err: names for error codes (see err.h for the convention).
 */
#include "core/err.h"

#include <string.h>

static const char *const celer_err_names[] = {
    [-(CELER_EPARSE - CELER_EBASE)] = "parse error",
    [-(CELER_ELIMIT - CELER_EBASE)] = "limit exceeded",
    [-(CELER_ENOTFOUND - CELER_EBASE)] = "not found",
    [-(CELER_ECONFIG - CELER_EBASE)] = "invalid configuration",
    [-(CELER_ECORRUPT - CELER_EBASE)] = "corrupt data",
    [-(CELER_ECLOSED - CELER_EBASE)] = "closed",
    [-(CELER_ETIMEOUT - CELER_EBASE)] = "timed out",
    [-(CELER_EPROTO - CELER_EBASE)] = "protocol violation",
    [-(CELER_ETLS - CELER_EBASE)] = "TLS failure",
    [-(CELER_EDNS - CELER_EBASE)] = "DNS failure",
    [-(CELER_EEXISTS - CELER_EBASE)] = "already exists",
    [-(CELER_EBUSY - CELER_EBASE)] = "busy",
};

const char *
err_str(int err)
{
    if (err == 0) {
        return "success";
    }
    if (err < CELER_EBASE && err > CELER_ELAST) {
        return celer_err_names[-(err - CELER_EBASE)];
    }
    if (err < 0 && err > CELER_EBASE) {
        return strerrordesc_np(-err) ? strerrordesc_np(-err) : "unknown system error";
    }
    return "unknown error";
}
