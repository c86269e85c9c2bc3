/*
 * conf_lex: the tokenizer of the configuration language.
 *
 * Turns the bytes of one file into tokens: bare words, quoted strings
 * ("..." or '...'; a backslash escapes only the quote character, so regular
 * expressions keep their backslashes), and the punctuation { } ( ) [ ] =
 * and ;. Skips whitespace, '#' line comments and non-nesting C block
 * comments. A word is any run of bytes other than whitespace and
 * # " ' = { } [ ] ( ) ; — so "/" starts a word unless it opens a comment.
 * Every token records its 1-based line and column. The lexer borrows the
 * input; token text is a view into it, except for quoted strings, whose
 * unescaped text is written into the lexer's scratch buffer (valid until the
 * next token).
 */
#ifndef CELER_CONF_LEX_H
#define CELER_CONF_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/strv.h"

enum conf_tok_kind {
    CONF_TOK_EOF,
    CONF_TOK_WORD,
    CONF_TOK_STRING,
    CONF_TOK_LBRACE,
    CONF_TOK_RBRACE,
    CONF_TOK_LPAREN,
    CONF_TOK_RPAREN,
    CONF_TOK_LBRACKET,
    CONF_TOK_RBRACKET,
    CONF_TOK_EQUALS,
    CONF_TOK_SEMICOLON,
    CONF_TOK_ERROR, /* text holds the message */
};

struct conf_tok {
    enum conf_tok_kind kind;
    struct strv text; /* word, unescaped string, or error message */
    unsigned line;
    unsigned col;
};

struct conf_lex {
    struct strv in; /* borrowed */
    size_t pos;
    unsigned line;
    unsigned col;
    struct buf scratch; /* owned: unescaped string text */
};

void conf_lex_init(struct conf_lex *lx, struct strv input);
void conf_lex_release(struct conf_lex *lx);
/* The next token; after EOF, EOF again. Errors are tokens, and lexing resumes after them. */
struct conf_tok conf_lex_next(struct conf_lex *lx);
const char *conf_tok_kind_name(enum conf_tok_kind kind);

#endif
