/*
 * conf_lex: tokenizer of the configuration language (see conf_lex.h).
 */
#include "conf/conf_lex.h"

#define CONF_STRING_MAX (1024 * 1024)

void
conf_lex_init(struct conf_lex *lx, struct strv input)
{
    *lx = (struct conf_lex){.in = input, .line = 1, .col = 1};
    buf_init(&lx->scratch, CONF_STRING_MAX);
}

void
conf_lex_release(struct conf_lex *lx)
{
    buf_release(&lx->scratch);
}

const char *
conf_tok_kind_name(enum conf_tok_kind kind)
{
    static const char *const names[] = {
        [CONF_TOK_EOF] = "end of file", [CONF_TOK_WORD] = "word",     [CONF_TOK_STRING] = "string",
        [CONF_TOK_LBRACE] = "'{'",      [CONF_TOK_RBRACE] = "'}'",    [CONF_TOK_LPAREN] = "'('",
        [CONF_TOK_RPAREN] = "')'",      [CONF_TOK_LBRACKET] = "'['",  [CONF_TOK_RBRACKET] = "']'",
        [CONF_TOK_EQUALS] = "'='",      [CONF_TOK_SEMICOLON] = "';'", [CONF_TOK_ERROR] = "error",
    };
    return names[kind];
}

static int
conf_lex_peek(const struct conf_lex *lx, size_t ahead)
{
    size_t i = lx->pos + ahead;

    return i < lx->in.len ? (unsigned char)lx->in.ptr[i] : -1;
}

static void
conf_lex_advance(struct conf_lex *lx)
{
    if (lx->pos >= lx->in.len) {
        return;
    }
    if (lx->in.ptr[lx->pos] == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
    lx->pos++;
}

static bool
conf_lex_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static bool
conf_lex_is_word(int c)
{
    return c > 0 && !conf_lex_is_space(c) && c != '#' && c != '"' && c != '\'' && c != '=' &&
           c != '{' && c != '}' && c != '[' && c != ']' && c != '(' && c != ')' && c != ';';
}

static struct conf_tok
conf_lex_error(unsigned line, unsigned col, const char *msg)
{
    return (struct conf_tok){CONF_TOK_ERROR, strv_from_cstr(msg), line, col};
}

/* Skips whitespace and comments; returns an error token for an open block comment. */
static bool
conf_lex_skip(struct conf_lex *lx, struct conf_tok *err)
{
    for (;;) {
        int c = conf_lex_peek(lx, 0);

        if (conf_lex_is_space(c)) {
            conf_lex_advance(lx);
        } else if (c == '#') {
            while (conf_lex_peek(lx, 0) != -1 && conf_lex_peek(lx, 0) != '\n') {
                conf_lex_advance(lx);
            }
        } else if (c == '/' && conf_lex_peek(lx, 1) == '*') {
            unsigned line = lx->line, col = lx->col;

            conf_lex_advance(lx);
            conf_lex_advance(lx);
            while (!(conf_lex_peek(lx, 0) == '*' && conf_lex_peek(lx, 1) == '/')) {
                if (conf_lex_peek(lx, 0) == -1) {
                    *err = conf_lex_error(line, col, "unterminated /* comment");
                    return false;
                }
                conf_lex_advance(lx);
            }
            conf_lex_advance(lx);
            conf_lex_advance(lx);
        } else {
            return true;
        }
    }
}

/*
 * Reads a quoted string. An error inside it (NUL byte, too long) is reported,
 * but the rest of the string is still consumed up to its closing quote, so
 * lexing resumes after the string rather than inside it (where its closing
 * quote would open a new string swallowing the following lines).
 */
static struct conf_tok
conf_lex_string(struct conf_lex *lx)
{
    unsigned line = lx->line, col = lx->col;
    int quote = conf_lex_peek(lx, 0);
    struct conf_tok err = {CONF_TOK_EOF, STRV_NULL, 0, 0};

    buf_reset(&lx->scratch);
    conf_lex_advance(lx);
    for (;;) {
        int c = conf_lex_peek(lx, 0);
        char out;

        if (c == -1) {
            return err.kind == CONF_TOK_ERROR ? err
                                              : conf_lex_error(line, col, "unterminated string");
        }
        if (c == 0 && err.kind != CONF_TOK_ERROR) {
            err = conf_lex_error(lx->line, lx->col, "NUL byte in string");
        }
        conf_lex_advance(lx);
        if (c == quote) {
            break;
        }
        out = (char)c;
        /* Only a backslash before the quote character escapes: regexes keep theirs. */
        if (c == '\\' && conf_lex_peek(lx, 0) == quote) {
            conf_lex_advance(lx);
            out = (char)quote;
        }
        if (err.kind != CONF_TOK_ERROR && try_buf_append(&lx->scratch, &out, 1) != 0) {
            err = conf_lex_error(line, col, "string longer than 1 MiB");
        }
    }
    if (err.kind == CONF_TOK_ERROR) {
        return err;
    }
    return (struct conf_tok){CONF_TOK_STRING, buf_data(&lx->scratch), line, col};
}

struct conf_tok
conf_lex_next(struct conf_lex *lx)
{
    static const struct {
        char c;
        enum conf_tok_kind kind;
    } punct[] = {
        {'{', CONF_TOK_LBRACE}, {'}', CONF_TOK_RBRACE},    {'(', CONF_TOK_LPAREN},
        {')', CONF_TOK_RPAREN}, {'[', CONF_TOK_LBRACKET},  {']', CONF_TOK_RBRACKET},
        {'=', CONF_TOK_EQUALS}, {';', CONF_TOK_SEMICOLON},
    };
    struct conf_tok err;
    unsigned line, col;
    size_t start;
    int c;

    if (!conf_lex_skip(lx, &err)) {
        return err;
    }
    line = lx->line;
    col = lx->col;
    c = conf_lex_peek(lx, 0);
    if (c == -1) {
        return (struct conf_tok){CONF_TOK_EOF, STRV_NULL, line, col};
    }
    if (c == '"' || c == '\'') {
        return conf_lex_string(lx);
    }
    for (size_t i = 0; i < sizeof(punct) / sizeof(punct[0]); i++) {
        if (c == punct[i].c) {
            conf_lex_advance(lx);
            return (struct conf_tok){punct[i].kind, strv_sub(lx->in, lx->pos - 1, 1), line, col};
        }
    }
    if (c == 0) {
        conf_lex_advance(lx);
        return conf_lex_error(line, col, "NUL byte in configuration");
    }
    start = lx->pos;
    while (conf_lex_is_word(conf_lex_peek(lx, 0)) &&
           !(conf_lex_peek(lx, 0) == '/' && conf_lex_peek(lx, 1) == '*')) {
        conf_lex_advance(lx);
    }
    return (struct conf_tok){CONF_TOK_WORD, strv_sub(lx->in, start, lx->pos - start), line, col};
}
