/*
 * smtp_addr: RFC 5321 envelope paths and mailboxes (section 4.1.2), with
 * the RFC 6531 (SMTPUTF8) extension of the grammar.
 *
 * Parses "<local@domain>", the null path "<>", and source routes
 * "<@a,@b:local@domain>" (the route is checked and then ignored, as RFC
 * 5321 appendix C asks). The local part is a dot-string or a quoted-string;
 * the domain is dot-separated LDH labels or an address literal ("[1.2.3.4]"
 * or "[IPv6:...]", checked with inet_pton; general literals are refused).
 *
 * Options mirror Momentum's reception knobs: pedantic
 * (rfc2821_pedantic_address_rules; when off, "a..b" and "ab." local parts
 * pass), utf8 (SMTPUTF8 was given: non-ASCII UTF-8 allowed in local part and
 * domain), ip_literal (allow_ip_literal), unqualified (a mailbox without
 * "@domain" passes; the caller appends domain_for_unqualified_*),
 * space_in_brackets (allow_trailing_whitespace_in_commands: "< a@b >"),
 * no_brackets (lenient: a path without angle brackets, ended by a space).
 *
 * Limits (RFC 5321 4.5.3.1): local part 64, domain 255, path 256 octets
 * (brackets and route included), DNS labels 63 octets (ASCII labels only:
 * the length of a UTF-8 label's A-label form is not known here).
 *
 * Pure: results borrow the input; no allocation, no state.
 */
#ifndef CELER_SMTP_ADDR_H
#define CELER_SMTP_ADDR_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"

#define SMTP_ADDR_LOCAL_MAX  64
#define SMTP_ADDR_DOMAIN_MAX 255
#define SMTP_ADDR_PATH_MAX   256
#define SMTP_ADDR_LABEL_MAX  63

struct smtp_addr_opts {
    bool pedantic;          /* strict dot-atoms; Momentum's default is true */
    bool utf8;              /* SMTPUTF8 in effect */
    bool ip_literal;        /* address literals accepted */
    bool unqualified;       /* "<user>" accepted */
    bool postmaster;        /* "<postmaster>" accepted even when !unqualified */
    bool space_in_brackets; /* "< a@b >" accepted */
    bool no_brackets;       /* "a@b" without angle brackets accepted */
};

/* Why a path was refused; SMTP_ADDR_OK when it was not. */
enum smtp_addr_error {
    SMTP_ADDR_OK = 0,
    SMTP_ADDR_ESYNTAX,      /* not a path or mailbox */
    SMTP_ADDR_ELOCAL_LONG,  /* local part over 64 octets */
    SMTP_ADDR_EDOMAIN_LONG, /* domain over 255 octets or a label over 63 */
    SMTP_ADDR_EPATH_LONG,   /* path over 256 octets */
    SMTP_ADDR_ENONASCII,    /* non-ASCII without utf8 */
    SMTP_ADDR_EUTF8,        /* invalid UTF-8 */
    SMTP_ADDR_ELITERAL,     /* address literal while !ip_literal */
    SMTP_ADDR_EBADLITERAL,  /* malformed or unsupported address literal */
    SMTP_ADDR_EUNQUALIFIED, /* no domain while !unqualified */
};

struct smtp_addr {
    struct strv local;  /* borrowed: as written; quotes included if quoted */
    struct strv domain; /* borrowed: as written; "" when null or unqualified */
    struct strv route;  /* borrowed: the source route "@a,@b" (ignored), or "" */
    bool is_null;       /* "<>" */
    bool is_quoted;     /* local part is a quoted-string */
    bool is_ip_literal; /* domain is "[...]" */
    bool is_unqualified;
    bool needs_smtputf8; /* contains non-ASCII octets */
};

/*
 * Parses a path at the start of *in and advances *in past it (the rest
 * holds whatever followed, e.g. " SIZE=100"). Returns 0, or CELER_EPARSE
 * with *why set (CELER_ELIMIT for the length limits). On error *in is
 * unchanged.
 */
int smtp_addr_parse_path(struct strv *in, const struct smtp_addr_opts *o, struct smtp_addr *a,
                         enum smtp_addr_error *why) CELER_WUR;

/* Parses all of s as a bare mailbox "local@domain" (no brackets, no route). */
int smtp_addr_parse_mailbox(struct strv s, const struct smtp_addr_opts *o, struct smtp_addr *a,
                            enum smtp_addr_error *why) CELER_WUR;

/* A static description of why ("bad address syntax"...). */
const char *smtp_addr_error_str(enum smtp_addr_error why);

/*
 * Appends the normalised mailbox to out, without brackets: a quoted local
 * part is unquoted when its content is a valid dot-string and otherwise
 * re-quoted with only '"' and '\' escaped; ASCII letters of the domain are
 * lower-cased; an unqualified address gets "@" default_domain when that is
 * not empty. The null path appends nothing. CELER_ELIMIT.
 */
int try_smtp_addr_render(const struct smtp_addr *a, struct strv default_domain,
                         struct buf *out) CELER_WUR;

#endif
