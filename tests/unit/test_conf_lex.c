/*
 * test_conf_lex: the configuration tokenizer.
 *
 * Table-driven: each case is an input and the exact token stream (kind,
 * text, line, column) the lexer must produce, ending with EOF. Covers every
 * token kind, both comment styles (and where an unterminated block comment
 * is reported), both quote styles and the backslash rule (only a backslash
 * before the quote character escapes; "\." stays for regexes), NUL bytes in
 * words and strings, words that contain '/', '*', '@' and ':', and that
 * lexing resumes after every error token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf_lex.h"
#include "core/mem.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAXTOK   16

struct want_tok {
    enum conf_tok_kind kind;
    const char *text; /* NULL: not checked (punctuation, EOF) */
    unsigned line;
    unsigned col;
};

struct lex_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    struct want_tok toks[MAXTOK];
};

#define T(k, t, l, c)                                                                              \
    {                                                                                              \
        CONF_TOK_##k, t, l, c                                                                      \
    }

static const struct lex_case cases[] = {
    {"empty", "", 0, {T(EOF, NULL, 1, 1)}},
    {"only blanks", " \t\r\n\f\v ", 0, {T(EOF, NULL, 2, 4)}},
    {"option",
     "a = b",
     0,
     {T(WORD, "a", 1, 1), T(EQUALS, "=", 1, 3), T(WORD, "b", 1, 5), T(EOF, NULL, 1, 6)}},
    {"punctuation",
     "{}()[]=;",
     0,
     {T(LBRACE, "{", 1, 1), T(RBRACE, "}", 1, 2), T(LPAREN, "(", 1, 3), T(RPAREN, ")", 1, 4),
      T(LBRACKET, "[", 1, 5), T(RBRACKET, "]", 1, 6), T(EQUALS, "=", 1, 7), T(SEMICOLON, ";", 1, 8),
      T(EOF, NULL, 1, 9)}},
    {"punctuation ends words",
     "a=b{c}d(e)f[g]h;i",
     0,
     {T(WORD, "a", 1, 1), T(EQUALS, "=", 1, 2), T(WORD, "b", 1, 3), T(LBRACE, "{", 1, 4),
      T(WORD, "c", 1, 5), T(RBRACE, "}", 1, 6), T(WORD, "d", 1, 7), T(LPAREN, "(", 1, 8),
      T(WORD, "e", 1, 9), T(RPAREN, ")", 1, 10), T(WORD, "f", 1, 11), T(LBRACKET, "[", 1, 12),
      T(WORD, "g", 1, 13), T(RBRACKET, "]", 1, 14), T(WORD, "h", 1, 15)}},
    {"lines and columns",
     "a\n  b\n\n\tc\r\nd",
     0,
     {T(WORD, "a", 1, 1), T(WORD, "b", 2, 3), T(WORD, "c", 4, 2), T(WORD, "d", 5, 1),
      T(EOF, NULL, 5, 2)}},
    {"hash comment",
     "# whole line { \" '\nx # trailing = {\ny",
     0,
     {T(WORD, "x", 2, 1), T(WORD, "y", 3, 1), T(EOF, NULL, 3, 2)}},
    {"hash comment at eof", "a # c", 0, {T(WORD, "a", 1, 1), T(EOF, NULL, 1, 6)}},
    {"hash ends a word", "ab#c\nd", 0, {T(WORD, "ab", 1, 1), T(WORD, "d", 2, 1)}},
    {"block comment over lines",
     "/* one\n two { */ y",
     0,
     {T(WORD, "y", 2, 11), T(EOF, NULL, 2, 12)}},
    {"block comments do not nest",
     "/* a /* b */ c */",
     0,
     {T(WORD, "c", 1, 14), T(WORD, "*/", 1, 16), T(EOF, NULL, 1, 18)}},
    {"block comment splits a word",
     "a/*x*/b",
     0,
     {T(WORD, "a", 1, 1), T(WORD, "b", 1, 7), T(EOF, NULL, 1, 8)}},
    {"unterminated block comment",
     "x /* abc\n def",
     0,
     {T(WORD, "x", 1, 1), T(ERROR, "unterminated /* comment", 1, 3), T(EOF, NULL, 2, 5)}},
    {"unterminated block comment ending in star",
     "/*/",
     0,
     {T(ERROR, "unterminated /* comment", 1, 1), T(EOF, NULL, 1, 4)}},
    {"double quotes", "\"a b # c\"", 0, {T(STRING, "a b # c", 1, 1), T(EOF, NULL, 1, 10)}},
    {"single quotes", "'x = { y'", 0, {T(STRING, "x = { y", 1, 1), T(EOF, NULL, 1, 10)}},
    {"empty strings", "\"\" ''", 0, {T(STRING, "", 1, 1), T(STRING, "", 1, 4)}},
    {"other quote inside",
     "\"it's\" 'say \"hi\"'",
     0,
     {T(STRING, "it's", 1, 1), T(STRING, "say \"hi\"", 1, 8)}},
    {"backslash escapes the double quote",
     "\"say \\\"hi\\\"\"",
     0,
     {T(STRING, "say \"hi\"", 1, 1), T(EOF, NULL, 1, 13)}},
    {"backslash escapes the single quote", "'it\\'s'", 0, {T(STRING, "it's", 1, 1)}},
    {"backslash before the other quote is kept",
     "'a\\\"b' \"c\\'d\"",
     0,
     {T(STRING, "a\\\"b", 1, 1), T(STRING, "c\\'d", 1, 8)}},
    {"regex backslashes are kept",
     "\"/^mx[0-9]\\.example$/\"",
     0,
     {T(STRING, "/^mx[0-9]\\.example$/", 1, 1)}},
    {"double backslash is two backslashes", "\"a\\\\b\"", 0, {T(STRING, "a\\\\b", 1, 1)}},
    {"string over lines",
     "\"a\nb\" c",
     0,
     {T(STRING, "a\nb", 1, 1), T(WORD, "c", 2, 4), T(EOF, NULL, 2, 5)}},
    {"string glued to words",
     "a\"b\"c",
     0,
     {T(WORD, "a", 1, 1), T(STRING, "b", 1, 2), T(WORD, "c", 1, 5)}},
    {"unterminated string",
     "a = \"abc\n",
     0,
     {T(WORD, "a", 1, 1), T(EQUALS, "=", 1, 3), T(ERROR, "unterminated string", 1, 5),
      T(EOF, NULL, 2, 1)}},
    {"escaped quote does not close",
     "'ab\\'",
     0,
     {T(ERROR, "unterminated string", 1, 1), T(EOF, NULL, 1, 6)}},
    {"NUL between words",
     "a\0b",
     3,
     {T(WORD, "a", 1, 1), T(ERROR, "NUL byte in configuration", 1, 2), T(WORD, "b", 1, 3),
      T(EOF, NULL, 1, 4)}},
    {"NUL alone", "\0", 1, {T(ERROR, "NUL byte in configuration", 1, 1), T(EOF, NULL, 1, 2)}},
    {"NUL in a string: error at the NUL, lexing resumes after the string",
     "\"a\0b\" c\nd",
     9,
     {T(ERROR, "NUL byte in string", 1, 3), T(WORD, "c", 1, 7), T(WORD, "d", 2, 1),
      T(EOF, NULL, 2, 2)}},
    {"NUL in an unterminated string",
     "'a\0b",
     4,
     {T(ERROR, "NUL byte in string", 1, 3), T(EOF, NULL, 1, 5)}},
    {"words with slash, star, at, colon",
     "/var/spool/celer user@example.com 1.2.3.4:25 *:25 [::1]:25 a*b 10.0.0.0/8 a/b",
     0,
     {T(WORD, "/var/spool/celer", 1, 1), T(WORD, "user@example.com", 1, 18),
      T(WORD, "1.2.3.4:25", 1, 35), T(WORD, "*:25", 1, 46), T(LBRACKET, "[", 1, 51),
      T(WORD, "::1", 1, 52), T(RBRACKET, "]", 1, 55), T(WORD, ":25", 1, 56), T(WORD, "a*b", 1, 60),
      T(WORD, "10.0.0.0/8", 1, 64), T(WORD, "a/b", 1, 75), T(EOF, NULL, 1, 78)}},
    {"slash alone and star-slash are words",
     "/ */ a*/b",
     0,
     {T(WORD, "/", 1, 1), T(WORD, "*/", 1, 3), T(WORD, "a*/b", 1, 6)}},
    {"semicolon separates words",
     "a;b",
     0,
     {T(WORD, "a", 1, 1), T(SEMICOLON, ";", 1, 2), T(WORD, "b", 1, 3), T(EOF, NULL, 1, 4)}},
    {"bytes above 0x7f are word bytes",
     "caf\xc3\xa9 x",
     0,
     {T(WORD, "caf\xc3\xa9", 1, 1), T(WORD, "x", 1, 7)}},
    {"scope stanza",
     "Binding \"b1\" {\n  Bind_Address = 192.0.2.1\n}\n",
     0,
     {T(WORD, "Binding", 1, 1), T(STRING, "b1", 1, 9), T(LBRACE, "{", 1, 14),
      T(WORD, "Bind_Address", 2, 3), T(EQUALS, "=", 2, 16), T(WORD, "192.0.2.1", 2, 18),
      T(RBRACE, "}", 3, 1), T(EOF, NULL, 4, 1)}},
};

static void
check_case(const struct lex_case *lc)
{
    struct conf_lex lx;
    size_t len = lc->len ? lc->len : strlen(lc->in);

    conf_lex_init(&lx, strv_make(lc->in, len));
    for (size_t i = 0; i < MAXTOK && (i == 0 || lc->toks[i].line != 0); i++) {
        const struct want_tok *w = &lc->toks[i];
        struct conf_tok t = conf_lex_next(&lx);

        if (t.kind != w->kind || t.line != w->line || t.col != w->col ||
            (w->text && !strv_eq_cstr(t.text, w->text))) {
            print_error("case \"%s\", token %zu: got %s \"%.*s\" at %u:%u, want %s \"%s\" at "
                        "%u:%u\n",
                        lc->name, i, conf_tok_kind_name(t.kind), STRV_FMT(t.text), t.line, t.col,
                        conf_tok_kind_name(w->kind), w->text ? w->text : "", w->line, w->col);
            conf_lex_release(&lx);
            fail();
        }
    }
    conf_lex_release(&lx);
}

static void
test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        check_case(&cases[i]);
    }
}

/* After EOF the lexer keeps returning EOF at the same place. */
static void
test_eof_repeats(void **state)
{
    struct conf_lex lx;

    (void)state;
    conf_lex_init(&lx, STRV_LIT("a\n"));
    assert_int_equal(conf_lex_next(&lx).kind, CONF_TOK_WORD);
    for (int i = 0; i < 3; i++) {
        struct conf_tok t = conf_lex_next(&lx);

        assert_int_equal(t.kind, CONF_TOK_EOF);
        assert_int_equal(t.line, 2);
        assert_int_equal(t.col, 1);
    }
    conf_lex_release(&lx);
}

/* The lexer must not read past the view: the input is not NUL-terminated. */
static void
test_no_read_past_end(void **state)
{
    static const char *const inputs[] = {"abc", "\"ab", "/*", "#x", "'", "a/", "/"};

    (void)state;
    for (size_t i = 0; i < NELEM(inputs); i++) {
        size_t len = strlen(inputs[i]);
        char *copy = xmemdup(inputs[i], len); /* exact size: ASan flags any overread */
        struct conf_lex lx;
        struct conf_tok t;
        int n = 0;

        conf_lex_init(&lx, strv_make(copy, len));
        do {
            t = conf_lex_next(&lx);
        } while (t.kind != CONF_TOK_EOF && ++n < 10);
        assert_int_equal(t.kind, CONF_TOK_EOF);
        conf_lex_release(&lx);
        free(copy);
    }
}

/* A string over 1 MiB is an error at its opening quote; lexing resumes after it. */
static void
test_string_too_long(void **state)
{
    size_t n = 1024 * 1024 + 10;
    char *in = xmalloc(n + 8);
    struct conf_lex lx;
    struct conf_tok t;

    (void)state;
    in[0] = '"';
    memset(in + 1, 'x', n);
    memcpy(in + 1 + n, "\" z", 3);
    conf_lex_init(&lx, strv_make(in, n + 4));
    t = conf_lex_next(&lx);
    assert_int_equal(t.kind, CONF_TOK_ERROR);
    assert_true(strv_eq_cstr(t.text, "string longer than 1 MiB"));
    assert_int_equal(t.line, 1);
    assert_int_equal(t.col, 1);
    t = conf_lex_next(&lx);
    assert_int_equal(t.kind, CONF_TOK_WORD);
    assert_true(strv_eq_cstr(t.text, "z"));
    assert_int_equal(conf_lex_next(&lx).kind, CONF_TOK_EOF);
    conf_lex_release(&lx);
    free(in);
}

/* A string of exactly 1 MiB is fine. */
static void
test_string_at_limit(void **state)
{
    size_t n = 1024 * 1024;
    char *in = xmalloc(n + 2);
    struct conf_lex lx;
    struct conf_tok t;

    (void)state;
    in[0] = '\'';
    memset(in + 1, 'y', n);
    in[n + 1] = '\'';
    conf_lex_init(&lx, strv_make(in, n + 2));
    t = conf_lex_next(&lx);
    assert_int_equal(t.kind, CONF_TOK_STRING);
    assert_int_equal(t.text.len, n);
    assert_int_equal(conf_lex_next(&lx).kind, CONF_TOK_EOF);
    conf_lex_release(&lx);
    free(in);
}

static void
test_kind_names(void **state)
{
    static const struct {
        enum conf_tok_kind kind;
        const char *name;
    } names[] = {
        {CONF_TOK_EOF, "end of file"}, {CONF_TOK_WORD, "word"},     {CONF_TOK_STRING, "string"},
        {CONF_TOK_LBRACE, "'{'"},      {CONF_TOK_RBRACE, "'}'"},    {CONF_TOK_LPAREN, "'('"},
        {CONF_TOK_RPAREN, "')'"},      {CONF_TOK_LBRACKET, "'['"},  {CONF_TOK_RBRACKET, "']'"},
        {CONF_TOK_EQUALS, "'='"},      {CONF_TOK_SEMICOLON, "';'"}, {CONF_TOK_ERROR, "error"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(names); i++) {
        assert_string_equal(conf_tok_kind_name(names[i].kind), names[i].name);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_eof_repeats),
        cmocka_unit_test(test_no_read_past_end),
        cmocka_unit_test(test_string_too_long),
        cmocka_unit_test(test_string_at_limit),
        cmocka_unit_test(test_kind_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
