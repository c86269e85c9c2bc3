/*
 * mainlog: Momentum's log formats (mainlog.ec and rejectlog.ec).
 *
 * Formats records into a buffer; the caller hands the line to a log_file
 * (log_writer.h). mainlog lines are '@'-separated with the record type as the
 * fifth field:
 *   ts@msgid@batchid@connid@R@rcpt_lp@rcpt_dom@from_lp@from_dom@ip@size@proto@bgroup@binding
 *   ts@msgid@batchid@connid@D@domain@size@bgroup@binding@retries@secs@remote_ip
 *   ts@msgid@batchid@connid@T@domain@sent@bgroup@binding@stage@retries@secs@remote_ip@response
 *   ts@msgid@batchid@connid@P@(as T)
 *   ts@@@@M1   (heartbeat)
 * As in Momentum, mainlog fields are not escaped, except that CR and LF (which
 * would break the line) become spaces. rejectlog lines are
 *   ts: R="ip:port" L="ip:port" C="connid" PATH="pathway" PATH_GRP="group"
 *       P="phase" E=code M=module CTXCONN=[k=v,...] CTXMESS=[k=v,...] reason
 * with the quoted values escaped (\" \\ and \xHH for control octets).
 */
#ifndef CELER_LOG_MAINLOG_H
#define CELER_LOG_MAINLOG_H

#include <stdint.h>

#include "core/buf.h"
#include "core/strv.h"

/* The stages of T and P records (Momentum's connection stage codes). */
enum mainlog_stage {
    MAINLOG_STAGE_NOT_CONNECTED = 0,
    MAINLOG_STAGE_IDLE = 1,
    MAINLOG_STAGE_MAILFROM = 2,
    MAINLOG_STAGE_AFTER_MAILFROM = 3,
    MAINLOG_STAGE_RCPTTO = 4,
    MAINLOG_STAGE_AFTER_RCPTTO = 5,
    MAINLOG_STAGE_DATA = 6,
    MAINLOG_STAGE_AFTER_DATA = 7,
    MAINLOG_STAGE_BODY = 8,
    MAINLOG_STAGE_CONFIRMATION = 9,
    MAINLOG_STAGE_EHLO = 10,
    MAINLOG_STAGE_AFTER_EHLO = 11,
    MAINLOG_STAGE_BANNER = 12,
    MAINLOG_STAGE_RSET = 13,
    MAINLOG_STAGE_AFTER_RSET = 14,
    MAINLOG_STAGE_STARTTLS = 15,
    MAINLOG_STAGE_AFTER_STARTTLS = 16,
    MAINLOG_STAGE_TLS_HANDSHAKE = 17,
    MAINLOG_STAGE_TLS_RENEGOTIATE = 18,
    MAINLOG_STAGE_XCLIENT = 19,
    MAINLOG_STAGE_AFTER_XCLIENT = 20,
    MAINLOG_STAGE_OUT_OF_BAND = 21,
    MAINLOG_STAGE_UNKNOWN = 22,
};

/* The ids and time every mainlog record starts with. */
struct mainlog_head {
    int64_t ts;
    const char *msgid;
    const char *batchid;
    const char *connid;
};

struct mainlog_reception {
    struct strv rcpt;   /* full address; split at the last '@' */
    struct strv sender; /* "" for the null sender */
    const char *ip;
    uint64_t size;
    const char *protocol; /* "esmtp", "http", "internal", ... */
    const char *binding_group;
    const char *binding;
};

struct mainlog_delivery {
    const char *domain;
    uint64_t size; /* D: message size; T/P: bytes sent before the failure */
    const char *binding_group;
    const char *binding;
    unsigned retries;
    double seconds; /* since reception */
    const char *remote_ip;
    enum mainlog_stage stage; /* T/P */
    struct strv response;     /* T/P */
};

void mainlog_format_reception(struct buf *out, const struct mainlog_head *h,
                              const struct mainlog_reception *r);
/* type is 'D', 'T', 'P' (or 'X'); D ignores stage and response. */
void mainlog_format_delivery(struct buf *out, const struct mainlog_head *h, char type,
                             const struct mainlog_delivery *d);
void mainlog_format_heartbeat(struct buf *out, int64_t ts);

struct rejectlog_entry {
    int64_t ts;
    const char *remote; /* "ip:port" */
    const char *local;  /* "ip:port" */
    const char *connid;
    const char *pathway;
    const char *pathway_group;
    const char *phase; /* "connect", "ehlo", "mailfrom", "rcptto", "data", ... */
    int code;
    const char *module;  /* the module that decided */
    struct strv ctxconn; /* "k=v,k=v" already formatted, or empty */
    struct strv ctxmess;
    struct strv reason; /* reply text, escaped by the formatter */
};

void rejectlog_format(struct buf *out, const struct rejectlog_entry *e);
void rejectlog_format_heartbeat(struct buf *out, int64_t ts);

#endif
