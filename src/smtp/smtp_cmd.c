/*
 * smtp_cmd: SMTP command-line parsing (see smtp_cmd.h).
 *
 * One pass: find the verb, check the line's length and octets, then hand
 * the rest to the verb's parser. MAIL and RCPT parse the path with
 * smtp_addr, split the ESMTP parameters generically (keyword[=value],
 * duplicates and count checked) and then give each known keyword a typed
 * meaning. Every refusal is a static reply.
 */
#include "smtp/smtp_cmd.h"

#include <string.h>

#include "smtp/smtp_xtext.h"

struct smtp_verb_def {
    const char *name;
    enum smtp_verb verb;
};

static const struct smtp_verb_def smtp_verbs[] = {
    {"HELO", SMTP_VERB_HELO}, {"EHLO", SMTP_VERB_EHLO},         {"MAIL", SMTP_VERB_MAIL},
    {"RCPT", SMTP_VERB_RCPT}, {"DATA", SMTP_VERB_DATA},         {"BDAT", SMTP_VERB_BDAT},
    {"RSET", SMTP_VERB_RSET}, {"NOOP", SMTP_VERB_NOOP},         {"QUIT", SMTP_VERB_QUIT},
    {"HELP", SMTP_VERB_HELP}, {"VRFY", SMTP_VERB_VRFY},         {"EXPN", SMTP_VERB_EXPN},
    {"AUTH", SMTP_VERB_AUTH}, {"STARTTLS", SMTP_VERB_STARTTLS}, {"XCLIENT", SMTP_VERB_XCLIENT},
};

#define SMTP_VERBS_N (sizeof(smtp_verbs) / sizeof(smtp_verbs[0]))

const char *
smtp_verb_name(enum smtp_verb verb)
{
    for (size_t i = 0; i < SMTP_VERBS_N; i++) {
        if (smtp_verbs[i].verb == verb) {
            return smtp_verbs[i].name;
        }
    }
    return "?";
}

void
smtp_cmd_opts_init(struct smtp_cmd_opts *o)
{
    *o = (struct smtp_cmd_opts){
        .addr = {.pedantic = true, .ip_literal = true},
        .ext = SMTP_EXT_ALL,
    };
}

/* Result of a step: 0, or CELER_EPROTO with *reply set. */
static int
smtp_cmd_refuse(struct smtp_reply *reply, struct smtp_reply r)
{
    *reply = r;
    return CELER_EPROTO;
}

#define REFUSE(code, enh, text) smtp_cmd_refuse(reply, SMTP_REPLY(code, enh, text))

static bool
smtp_cmd_is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static struct strv
smtp_cmd_rtrim(struct strv s)
{
    while (s.len && smtp_cmd_is_ws(s.ptr[s.len - 1])) {
        s.len--;
    }
    return s;
}

static struct strv
smtp_cmd_skip_spaces(struct strv s)
{
    while (s.len && s.ptr[0] == ' ') {
        s = strv_from(s, 1);
    }
    return s;
}

/* ---- ESMTP parameters, generic ---- */

static bool
smtp_cmd_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
smtp_cmd_keyword_ok(struct strv k)
{
    if (k.len == 0 || !smtp_cmd_is_alnum((unsigned char)k.ptr[0])) {
        return false;
    }
    for (size_t i = 1; i < k.len; i++) {
        if (!smtp_cmd_is_alnum((unsigned char)k.ptr[i]) && k.ptr[i] != '-') {
            return false;
        }
    }
    return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under SMTPUTF8 (RFC 6531). */
static bool
smtp_cmd_value_ok(struct strv v, bool utf8)
{
    if (v.len == 0) {
        return false;
    }
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];

        if (c >= 0x80) {
            if (!utf8) {
                return false;
            }
            continue; /* well-formedness checked once below */
        }
        if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return !utf8 || smtp_xtext_utf8_valid(v);
}

/* Splits "K1=V1  K2 ..." (spaces around allowed) into cmd->params. */
static int
smtp_cmd_split_params(struct strv rest, const struct smtp_cmd_opts *o, struct smtp_cmd *cmd,
                      struct smtp_reply *reply)
{
    for (;;) {
        struct strv word, key;
        ptrdiff_t eq;
        struct smtp_param *p;

        rest = smtp_cmd_skip_spaces(rest);
        if (rest.len == 0) {
            return 0;
        }
        word = strv_split(&rest, ' ');
        eq = strv_chr(word, '=');
        key = eq < 0 ? word : strv_sub(word, 0, (size_t)eq);
        if (!smtp_cmd_keyword_ok(key)) {
            return REFUSE(501, "5.5.4", "Bad parameter syntax");
        }
        for (size_t i = 0; i < cmd->nparams; i++) {
            if (strv_eq_ci(cmd->params[i].key, key)) {
                return REFUSE(501, "5.5.4", "Duplicate parameter");
            }
        }
        if (cmd->nparams == SMTP_CMD_PARAMS_MAX) {
            return REFUSE(501, "5.5.4", "Too many parameters");
        }
        p = &cmd->params[cmd->nparams++];
        *p = (struct smtp_param){.key = key, .value = STRV_NULL, .has_value = eq >= 0};
        if (eq >= 0) {
            p->value = strv_from(word, (size_t)eq + 1);
            if (!smtp_cmd_value_ok(p->value, (o->ext & SMTP_EXT_SMTPUTF8) != 0)) {
                return REFUSE(501, "5.5.4", "Bad parameter value");
            }
        }
    }
}

const struct smtp_param *
smtp_cmd_param(const struct smtp_cmd *cmd, const char *key)
{
    for (size_t i = 0; i < cmd->nparams; i++) {
        if (strv_eq_cstr_ci(cmd->params[i].key, key)) {
            return &cmd->params[i];
        }
    }
    return NULL;
}

/* ---- paths ---- */

static int
smtp_cmd_addr_refuse(enum smtp_addr_error why, bool rcpt, struct smtp_reply *reply)
{
    switch (why) {
    case SMTP_ADDR_ELOCAL_LONG:
        return REFUSE(501, "5.5.2", "Local part too long");
    case SMTP_ADDR_EDOMAIN_LONG:
        return REFUSE(501, "5.5.2", "Domain name too long");
    case SMTP_ADDR_EPATH_LONG:
        return REFUSE(501, "5.5.2", "Path too long");
    case SMTP_ADDR_ENONASCII:
        return REFUSE(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
    case SMTP_ADDR_EUTF8:
        return REFUSE(501, "5.5.2", "Invalid UTF-8 in address");
    case SMTP_ADDR_ELITERAL:
        return rcpt ? REFUSE(553, "5.1.2", "Address literals are not accepted")
                    : REFUSE(553, "5.1.8", "Address literals are not accepted");
    case SMTP_ADDR_EBADLITERAL:
        return REFUSE(501, "5.5.2", "Bad address literal");
    case SMTP_ADDR_EUNQUALIFIED:
        return rcpt ? REFUSE(553, "5.1.3", "Fully qualified address required")
                    : REFUSE(553, "5.1.7", "Fully qualified address required");
    default:
        return rcpt ? REFUSE(501, "5.5.2", "Bad recipient address syntax")
                    : REFUSE(501, "5.5.2", "Bad sender address syntax");
    }
}

/*
 * Common head of MAIL and RCPT: checks "FROM:"/"TO:" (prefix), the
 * trailing-whitespace rule, parses the path and splits the parameters.
 */
static int
smtp_cmd_path_and_params(struct strv rest, struct strv prefix, bool rcpt,
                         const struct smtp_cmd_opts *o, struct smtp_cmd *cmd,
                         struct smtp_reply *reply)
{
    struct smtp_addr_opts ao = o->addr;
    enum smtp_addr_error why;

    if (!strv_has_prefix_ci(rest, prefix)) {
        return rcpt ? REFUSE(501, "5.5.4", "Syntax: RCPT TO:<address>")
                    : REFUSE(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    }
    if (rest.len > 0 && smtp_cmd_is_ws(rest.ptr[rest.len - 1])) {
        if (!o->allow_trailing_ws) {
            return REFUSE(501, "5.5.4", "Trailing whitespace not allowed");
        }
        rest = smtp_cmd_rtrim(rest);
    }
    rest = smtp_cmd_skip_spaces(strv_from(rest, prefix.len)); /* "FROM: <a@b>" */
    ao.utf8 = true; /* non-ASCII is judged once SMTPUTF8 is known */
    ao.unqualified = rcpt ? o->allow_unqualified_rcpt : o->allow_unqualified_sender;
    ao.postmaster = rcpt; /* RFC 5321 4.5.1 */
    if (smtp_addr_parse_path(&rest, &ao, &cmd->addr, &why) != 0) {
        return smtp_cmd_addr_refuse(why, rcpt, reply);
    }
    if (rcpt && cmd->addr.is_null) {
        return REFUSE(501, "5.5.2", "Null recipient address not allowed");
    }
    if (rest.len && rest.ptr[0] != ' ') {
        return REFUSE(501, "5.5.4", "Syntax error after address");
    }
    return smtp_cmd_split_params(rest, o, cmd, reply);
}

/* ---- MAIL parameters ---- */

/* Decoded value must be printable US-ASCII (RFC 3461 4.4, 4.2). */
static bool
smtp_cmd_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126) {
            return false;
        }
    }
    return true;
}

static int
smtp_cmd_mail_size(const struct smtp_param *p, struct smtp_mail_params *m, struct smtp_reply *reply)
{
    int err;

    if (!p->has_value) {
        return REFUSE(501, "5.5.4", "SIZE requires a value");
    }
    err = strv_to_u64(p->value, UINT64_MAX, &m->size);
    if (err == CELER_ELIMIT) {
        return REFUSE(552, "5.3.4", "Message size exceeds fixed maximum message size");
    }
    if (err != 0) {
        return REFUSE(501, "5.5.4", "Bad SIZE value");
    }
    m->has_size = true;
    return 0;
}

static int
smtp_cmd_mail_body(const struct smtp_param *p, unsigned ext, struct smtp_mail_params *m,
                   struct smtp_reply *reply)
{
    if (strv_eq_cstr_ci(p->value, "7BIT")) {
        m->body = SMTP_BODY_7BIT;
    } else if (strv_eq_cstr_ci(p->value, "8BITMIME")) {
        m->body = SMTP_BODY_8BITMIME;
        if (!(ext & SMTP_EXT_8BITMIME)) {
            return REFUSE(555, "5.5.4", "BODY=8BITMIME not supported");
        }
    } else if (strv_eq_cstr_ci(p->value, "BINARYMIME")) {
        m->body = SMTP_BODY_BINARYMIME;
        if (!(ext & SMTP_EXT_BINARYMIME)) {
            return REFUSE(555, "5.5.4", "BODY=BINARYMIME not supported");
        }
    } else {
        return REFUSE(501, "5.5.4", "Bad BODY value");
    }
    return 0;
}

static int
smtp_cmd_mail_envid(const struct smtp_param *p, struct smtp_mail_params *m,
                    struct smtp_reply *reply)
{
    int err;

    if (!p->has_value || !smtp_xtext_valid(p->value)) {
        return REFUSE(501, "5.5.4", "Bad ENVID value");
    }
    err = smtp_xtext_decode_into(p->value, m->envid, SMTP_CMD_ENVID_MAX, &m->envid_len);
    if (err != 0) {
        return REFUSE(501, "5.5.4", "ENVID too long");
    }
    m->envid[m->envid_len] = '\0';
    if (!smtp_cmd_printable(m->envid, m->envid_len)) {
        return REFUSE(501, "5.5.4", "Bad ENVID value");
    }
    m->has_envid = true;
    return 0;
}

static int
smtp_cmd_mail_auth(const struct smtp_param *p, struct smtp_mail_params *m, struct smtp_reply *reply)
{
    if (!p->has_value) {
        return REFUSE(501, "5.5.4", "Bad AUTH value");
    }
    m->has_auth = true;
    if (strv_eq_cstr(p->value, "<>")) {
        m->auth_null = true;
        return 0;
    }
    if (p->value.len > SMTP_CMD_AUTH_MAX || !smtp_xtext_valid(p->value) ||
        smtp_xtext_decode_into(p->value, m->auth, SMTP_CMD_AUTH_MAX, &m->auth_len) != 0) {
        return REFUSE(501, "5.5.4", "Bad AUTH value");
    }
    m->auth[m->auth_len] = '\0';
    return 0;
}

/* One MAIL parameter: the extension must be offered, the value well-formed. */
static int
smtp_cmd_mail_param(const struct smtp_param *p, unsigned ext, struct smtp_mail_params *m,
                    struct smtp_reply *reply)
{
    if (strv_eq_cstr_ci(p->key, "SIZE") && (ext & SMTP_EXT_SIZE)) {
        return smtp_cmd_mail_size(p, m, reply);
    }
    if (strv_eq_cstr_ci(p->key, "BODY") && (ext & (SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME))) {
        return p->has_value ? smtp_cmd_mail_body(p, ext, m, reply)
                            : REFUSE(501, "5.5.4", "BODY requires a value");
    }
    if (strv_eq_cstr_ci(p->key, "SMTPUTF8") && (ext & SMTP_EXT_SMTPUTF8)) {
        m->smtputf8 = true;
        return p->has_value ? REFUSE(501, "5.5.4", "SMTPUTF8 takes no value") : 0;
    }
    if (strv_eq_cstr_ci(p->key, "RET") && (ext & SMTP_EXT_DSN)) {
        if (strv_eq_cstr_ci(p->value, "FULL")) {
            m->ret = SMTP_RET_FULL;
        } else if (strv_eq_cstr_ci(p->value, "HDRS")) {
            m->ret = SMTP_RET_HDRS;
        } else {
            return REFUSE(501, "5.5.4", "Bad RET value");
        }
        return 0;
    }
    if (strv_eq_cstr_ci(p->key, "ENVID") && (ext & SMTP_EXT_DSN)) {
        return smtp_cmd_mail_envid(p, m, reply);
    }
    if (strv_eq_cstr_ci(p->key, "AUTH") && (ext & SMTP_EXT_AUTH)) {
        return smtp_cmd_mail_auth(p, m, reply);
    }
    return REFUSE(555, "5.5.4", "Unsupported MAIL parameter");
}

static int
smtp_cmd_mail(struct strv rest, const struct smtp_cmd_opts *o, struct smtp_cmd *cmd,
              struct smtp_reply *reply)
{
    struct smtp_mail_params *m = &cmd->u.mail;
    int err = smtp_cmd_path_and_params(rest, STRV_LIT("FROM:"), false, o, cmd, reply);

    if (err != 0) {
        return err;
    }
    for (size_t i = 0; i < cmd->nparams; i++) {
        err = smtp_cmd_mail_param(&cmd->params[i], o->ext, m, reply);
        if (err != 0) {
            return err;
        }
    }
    if (cmd->addr.needs_smtputf8 && !m->smtputf8) {
        return smtp_cmd_addr_refuse(SMTP_ADDR_ENONASCII, false, reply);
    }
    return 0;
}

/* ---- RCPT parameters ---- */

static int
smtp_cmd_rcpt_notify(const struct smtp_param *p, struct smtp_rcpt_params *r,
                     struct smtp_reply *reply)
{
    struct strv list = p->value;

    if (!p->has_value) {
        return REFUSE(501, "5.5.4", "Bad NOTIFY value");
    }
    while (list.len) {
        struct strv item = strv_split(&list, ',');

        if (strv_eq_cstr_ci(item, "NEVER")) {
            r->notify |= SMTP_NOTIFY_NEVER;
        } else if (strv_eq_cstr_ci(item, "SUCCESS")) {
            r->notify |= SMTP_NOTIFY_SUCCESS;
        } else if (strv_eq_cstr_ci(item, "FAILURE")) {
            r->notify |= SMTP_NOTIFY_FAILURE;
        } else if (strv_eq_cstr_ci(item, "DELAY")) {
            r->notify |= SMTP_NOTIFY_DELAY;
        } else {
            return REFUSE(501, "5.5.4", "Bad NOTIFY value");
        }
    }
    if (p->value.ptr[p->value.len - 1] == ',') { /* "SUCCESS," */
        return REFUSE(501, "5.5.4", "Bad NOTIFY value");
    }
    if ((r->notify & SMTP_NOTIFY_NEVER) && r->notify != SMTP_NOTIFY_NEVER) {
        return REFUSE(501, "5.5.4", "NOTIFY=NEVER cannot be combined");
    }
    return 0;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2), or utf-8;utf-8-addr-* (RFC 6533). */
static int
smtp_cmd_rcpt_orcpt(const struct smtp_param *p, unsigned ext, struct smtp_rcpt_params *r,
                    struct smtp_reply *reply)
{
    struct strv v = p->value;
    ptrdiff_t semi = strv_chr(v, ';');
    struct strv type, addr;
    int err;

    if (!p->has_value || v.len > SMTP_CMD_ORCPT_MAX || semi <= 0) {
        return REFUSE(501, "5.5.4", "Bad ORCPT value");
    }
    type = strv_sub(v, 0, (size_t)semi);
    addr = strv_from(v, (size_t)semi + 1);
    if (!smtp_cmd_keyword_ok(type) || addr.len == 0) {
        return REFUSE(501, "5.5.4", "Bad ORCPT value");
    }
    if (strv_eq_cstr_ci(type, "utf-8")) {
        err = smtp_xtext_decode_utf8addr_into(addr, (ext & SMTP_EXT_SMTPUTF8) != 0, r->orcpt,
                                              SMTP_CMD_ORCPT_MAX, &r->orcpt_len);
    } else {
        err = smtp_xtext_decode_into(addr, r->orcpt, SMTP_CMD_ORCPT_MAX, &r->orcpt_len);
    }
    if (err != 0) {
        return REFUSE(501, "5.5.4", "Bad ORCPT value");
    }
    r->orcpt[r->orcpt_len] = '\0';
    for (size_t i = 0; i < r->orcpt_len; i++) {
        unsigned char c = (unsigned char)r->orcpt[i];

        if (c < 32 || c == 127 || (c >= 0x80 && !strv_eq_cstr_ci(type, "utf-8"))) {
            return REFUSE(501, "5.5.4", "Bad ORCPT value");
        }
    }
    r->orcpt_type = type;
    r->has_orcpt = true;
    return 0;
}

static int
smtp_cmd_rcpt(struct strv rest, const struct smtp_cmd_opts *o, struct smtp_cmd *cmd,
              struct smtp_reply *reply)
{
    int err = smtp_cmd_path_and_params(rest, STRV_LIT("TO:"), true, o, cmd, reply);

    if (err != 0) {
        return err;
    }
    for (size_t i = 0; i < cmd->nparams; i++) {
        const struct smtp_param *p = &cmd->params[i];

        if (strv_eq_cstr_ci(p->key, "NOTIFY") && (o->ext & SMTP_EXT_DSN)) {
            err = smtp_cmd_rcpt_notify(p, &cmd->u.rcpt, reply);
        } else if (strv_eq_cstr_ci(p->key, "ORCPT") && (o->ext & SMTP_EXT_DSN)) {
            err = smtp_cmd_rcpt_orcpt(p, o->ext, &cmd->u.rcpt, reply);
        } else {
            err = REFUSE(555, "5.5.4", "Unsupported RCPT parameter");
        }
        if (err != 0) {
            return err;
        }
    }
    if (cmd->addr.needs_smtputf8 && !o->smtputf8) {
        return smtp_cmd_addr_refuse(SMTP_ADDR_ENONASCII, true, reply);
    }
    return 0;
}

/* ---- other verbs ---- */

static int
smtp_cmd_bdat(struct strv rest, struct smtp_cmd *cmd, struct smtp_reply *reply)
{
    struct strv size = strv_next_word(&rest);
    struct strv last = strv_next_word(&rest);

    if (size.len == 0 || strv_to_u64(size, UINT64_MAX, &cmd->u.bdat.size) != 0) {
        return REFUSE(501, "5.5.4", "Syntax: BDAT size [LAST]");
    }
    if (last.len && !strv_eq_cstr_ci(last, "LAST")) {
        return REFUSE(501, "5.5.4", "Syntax: BDAT size [LAST]");
    }
    if (strv_trim(rest).len) {
        return REFUSE(501, "5.5.4", "Syntax: BDAT size [LAST]");
    }
    cmd->u.bdat.last = last.len > 0;
    return 0;
}

/* base64 (RFC 4648) with padding, or "=" for an empty response. */
static bool
smtp_cmd_base64_ok(struct strv s)
{
    size_t pad = 0;

    if (strv_eq_cstr(s, "=")) {
        return true;
    }
    if (s.len == 0 || s.len % 4 != 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];

        if (c == '=') {
            pad++;
        } else if (pad || !(smtp_cmd_is_alnum((unsigned char)c) || c == '+' || c == '/')) {
            return false;
        }
    }
    return pad <= 2;
}

static int
smtp_cmd_auth(struct strv rest, struct smtp_cmd *cmd, struct smtp_reply *reply)
{
    struct strv mech = strv_next_word(&rest);
    struct strv initial = strv_next_word(&rest);

    if (mech.len == 0 || mech.len > 20 || strv_trim(rest).len) {
        return REFUSE(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    }
    for (size_t i = 0; i < mech.len; i++) {
        char c = mech.ptr[i];

        if (!smtp_cmd_is_alnum((unsigned char)c) && c != '-' && c != '_') {
            return REFUSE(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
        }
    }
    if (initial.len && !smtp_cmd_base64_ok(initial)) {
        return REFUSE(501, "5.5.2", "Invalid base64 data");
    }
    cmd->u.auth.mech = mech;
    cmd->u.auth.initial = initial;
    cmd->u.auth.has_initial = initial.len > 0;
    return 0;
}

static int
smtp_cmd_xclient(struct strv rest, const struct smtp_cmd_opts *o, struct smtp_cmd *cmd,
                 struct smtp_reply *reply)
{
    int err;

    if (strv_trim(rest).len == 0) {
        return REFUSE(501, "5.5.4", "Syntax: XCLIENT attribute=value ...");
    }
    err = smtp_cmd_split_params(rest, o, cmd, reply);
    if (err != 0) {
        return err;
    }
    for (size_t i = 0; i < cmd->nparams; i++) {
        const struct smtp_param *p = &cmd->params[i];
        unsigned bit = smtp_xclient_attr_bit(p->key);

        if (bit == 0) {
            return REFUSE(501, "5.5.4", "Bad XCLIENT attribute name");
        }
        if (!p->has_value || !smtp_xtext_valid(p->value)) {
            return REFUSE(501, "5.5.4", "Bad XCLIENT attribute value");
        }
        cmd->u.xclient_attrs |= bit;
    }
    return 0;
}

/* Verbs with no, an optional or a required free-form argument. */
static int
smtp_cmd_simple(struct smtp_cmd *cmd, struct smtp_reply *reply)
{
    switch (cmd->verb) {
    case SMTP_VERB_DATA:
    case SMTP_VERB_RSET:
    case SMTP_VERB_QUIT:
    case SMTP_VERB_STARTTLS:
        if (cmd->arg.len) {
            return REFUSE(501, "5.5.4", "Syntax error: no arguments allowed");
        }
        return 0;
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
        return cmd->arg.len ? 0 : REFUSE(501, "5.5.4", "Syntax: EHLO hostname");
    case SMTP_VERB_VRFY:
    case SMTP_VERB_EXPN:
        return cmd->arg.len ? 0 : REFUSE(501, "5.5.4", "Syntax error: argument required");
    default: /* NOOP, HELP */
        return 0;
    }
}

/* ---- entry ---- */

static int
smtp_cmd_verb(struct strv word, struct smtp_cmd *cmd)
{
    for (size_t i = 0; i < SMTP_VERBS_N; i++) {
        if (strv_eq_cstr_ci(word, smtp_verbs[i].name)) {
            cmd->verb = smtp_verbs[i].verb;
            return 0;
        }
    }
    return CELER_ENOTFOUND;
}

int
smtp_cmd_parse(struct strv line, const struct smtp_cmd_opts *o, struct smtp_cmd *cmd,
               struct smtp_reply *reply)
{
    struct strv rest = line;
    struct strv word = strv_split(&rest, ' ');
    size_t max;

    memset(cmd, 0, sizeof(*cmd));
    *reply = (struct smtp_reply){0};
    if (smtp_cmd_verb(word, cmd) != 0) {
        return line.len > SMTP_CMD_LINE_MAX ? REFUSE(500, "5.5.2", "Line too long")
                                            : REFUSE(500, "5.5.1", "Command unrecognized");
    }
    max = cmd->verb == SMTP_VERB_AUTH ? SMTP_CMD_AUTH_LINE_MAX : SMTP_CMD_LINE_MAX;
    if (line.len > max) {
        return REFUSE(500, "5.5.2", "Line too long");
    }
    for (size_t i = 0; i < line.len; i++) {
        unsigned char c = (unsigned char)line.ptr[i];

        if ((c < 32 && c != '\t') || c == 127) {
            return REFUSE(500, "5.5.2", "Invalid character in command");
        }
    }
    cmd->arg = strv_trim(rest);
    switch (cmd->verb) {
    case SMTP_VERB_MAIL:
        return smtp_cmd_mail(rest, o, cmd, reply);
    case SMTP_VERB_RCPT:
        return smtp_cmd_rcpt(rest, o, cmd, reply);
    case SMTP_VERB_BDAT:
        return smtp_cmd_bdat(rest, cmd, reply);
    case SMTP_VERB_AUTH:
        return smtp_cmd_auth(rest, cmd, reply);
    case SMTP_VERB_XCLIENT:
        return smtp_cmd_xclient(smtp_cmd_rtrim(rest), o, cmd, reply);
    default:
        return smtp_cmd_simple(cmd, reply);
    }
}
