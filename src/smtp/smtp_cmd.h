/*
 * smtp_cmd: server-side parsing of one SMTP command line (RFC 5321 4.1,
 * with the parameters of RFC 1870 SIZE, 6152 8BITMIME, 3030 BDAT and
 * BINARYMIME, 6531 SMTPUTF8, 3461 DSN, 4954 AUTH and Postfix XCLIENT).
 *
 * Input: one line without its CRLF, as received. Output: a struct smtp_cmd
 * whose views borrow the line, or a struct smtp_reply saying why the line
 * was refused (a protocol outcome, not an error of ours). The parser knows
 * the syntax only; state (is MAIL allowed now? may BDAT, STARTTLS, AUTH or
 * XCLIENT be used at all?) and policy (is this sender welcome? is SIZE over
 * our maximum?) belong to the session. Parameters, though, are checked
 * against the extensions offered (o->ext): one of an extension not offered
 * is refused like an unknown one.
 *
 * Whitespace: "FROM: <a@b>" (spaces after the colon) is always accepted;
 * trailing blanks after MAIL/RCPT only with allow_trailing_ws
 * (rfc2821_allow_whitespace_in_envelope); "< a@b >" only with
 * addr.space_in_brackets (Momentum's allow_trailing_whitespace_in_commands
 * means exactly this); other verbs ignore trailing blanks.
 *
 * Limits: SMTP_CMD_LINE_MAX octets per line (AUTH: SMTP_CMD_AUTH_LINE_MAX,
 * RFC 4954 section 4), SMTP_CMD_PARAMS_MAX parameters per command, ENVID
 * 100 octets decoded, ORCPT 500 octets as sent, AUTH= 500 octets as sent.
 * Decoded xtext values are stored inside struct smtp_cmd, so a parse
 * allocates nothing.
 *
 * Reply codes for refusals:
 *   500 5.5.1  unknown command          500 5.5.2  line too long, control octet
 *   501 5.5.4  syntax of the command or its arguments, bad parameter value,
 *              duplicate or too many parameters
 *   501 5.5.2  bad address (syntax, length, UTF-8, literal syntax, null
 *              recipient); 553 5.6.7 non-ASCII address without SMTPUTF8;
 *   553 5.1.8 / 5.1.2  address literal refused (MAIL / RCPT);
 *   553 5.1.7 / 5.1.3  unqualified address refused (MAIL / RCPT);
 *   555 5.5.4  parameter unknown or of an extension not offered;
 *   552 5.3.4  SIZE beyond any possible limit; 501 5.5.2 bad AUTH base64.
 */
#ifndef CELER_SMTP_CMD_H
#define CELER_SMTP_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/strv.h"
#include "smtp/smtp_addr.h"
#include "smtp/smtp_reply.h"

#define SMTP_CMD_LINE_MAX      2048  /* RFC 5321's 512 plus extension parameters */
#define SMTP_CMD_AUTH_LINE_MAX 12288 /* RFC 4954 section 4 */
#define SMTP_CMD_PARAMS_MAX    16
#define SMTP_CMD_ENVID_MAX     100
#define SMTP_CMD_ORCPT_MAX     500
#define SMTP_CMD_AUTH_MAX      500

enum smtp_verb {
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_BDAT,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_HELP,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB_XCLIENT,
};

/* The verb's name in upper case ("MAIL"). */
const char *smtp_verb_name(enum smtp_verb verb);

/* What the caller allows, filled from configuration. */
struct smtp_cmd_opts {
    struct smtp_addr_opts addr;    /* utf8 is set per MAIL by SMTPUTF8 */
    unsigned ext;                  /* SMTP_EXT_* offered to this client */
    bool allow_trailing_ws;        /* rfc2821_allow_whitespace_in_envelope */
    bool allow_unqualified_sender; /* domain_for_unqualified_sender_address set */
    bool allow_unqualified_rcpt;   /* domain_for_unqualified_recipient_addresses set */
    bool smtputf8;                 /* the transaction's MAIL had SMTPUTF8 (for RCPT) */
};

/* Momentum's defaults: pedantic addresses, IP literals on, all extensions. */
void smtp_cmd_opts_init(struct smtp_cmd_opts *o);

struct smtp_param {
    struct strv key;   /* borrowed */
    struct strv value; /* borrowed; "" when absent */
    bool has_value;
};

enum smtp_body {
    SMTP_BODY_NONE = 0, /* no BODY= given */
    SMTP_BODY_7BIT,
    SMTP_BODY_8BITMIME,
    SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
    SMTP_RET_NONE = 0,
    SMTP_RET_FULL,
    SMTP_RET_HDRS,
};

enum smtp_notify {
    SMTP_NOTIFY_NEVER = 1u << 0,
    SMTP_NOTIFY_SUCCESS = 1u << 1,
    SMTP_NOTIFY_FAILURE = 1u << 2,
    SMTP_NOTIFY_DELAY = 1u << 3,
};

struct smtp_mail_params {
    bool has_size;
    uint64_t size;
    enum smtp_body body;
    bool smtputf8;
    enum smtp_ret ret;
    bool has_envid;
    size_t envid_len;
    char envid[SMTP_CMD_ENVID_MAX + 1]; /* decoded, NUL-terminated */
    bool has_auth;
    bool auth_null; /* AUTH=<> */
    size_t auth_len;
    char auth[SMTP_CMD_AUTH_MAX + 1]; /* decoded, NUL-terminated */
};

struct smtp_rcpt_params {
    unsigned notify; /* SMTP_NOTIFY_* bits; 0 when absent */
    bool has_orcpt;
    struct strv orcpt_type; /* borrowed: "rfc822", "utf-8", ... */
    size_t orcpt_len;
    char orcpt[SMTP_CMD_ORCPT_MAX + 1]; /* decoded, NUL-terminated */
};

struct smtp_cmd {
    enum smtp_verb verb;
    struct strv arg; /* borrowed: text after the verb, trimmed */
    /* MAIL, RCPT */
    struct smtp_addr addr;
    /* MAIL, RCPT, XCLIENT: as sent */
    size_t nparams;
    struct smtp_param params[SMTP_CMD_PARAMS_MAX];
    union {
        struct smtp_mail_params mail;
        struct smtp_rcpt_params rcpt;
        struct {
            uint64_t size;
            bool last;
        } bdat;
        struct {
            struct strv mech;    /* borrowed */
            struct strv initial; /* borrowed: initial response, "" if none */
            bool has_initial;
        } auth;
        unsigned xclient_attrs; /* SMTP_XCLIENT_* given */
    } u;
};

/*
 * Parses line (without CRLF). Returns 0 with *cmd filled, or CELER_EPROTO
 * with *reply set to the reply to send. Views in *cmd borrow line.
 */
int smtp_cmd_parse(struct strv line, const struct smtp_cmd_opts *o, struct smtp_cmd *cmd,
                   struct smtp_reply *reply) CELER_WUR;

/* The parameter named key (case-insensitive) of a parsed command, or NULL. */
const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd, const char *key);

#endif
