/*
 * test_conf_parse: the configuration parser, its includes and the scope
 * merging of conf_build.
 *
 * Checks the syntax tree for options, arrays, dictionaries, nested values and
 * scopes with and without names; error recovery as a user sees it (every
 * problem of a file reported in one run, each with file:line:col, and the
 * rest of the file still parsed); includes of files and directories (lexical
 * byte order, dot-files and non-regular files skipped, paths relative to the
 * including file), readonly_include, include cycles, the depth limit and
 * missing files; rendering values back to text; and that a scope written
 * several times merges into one. Files live in a mkdtemp directory that each
 * test removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/conf_parse.h"
#include "core/buf.h"
#include "core/mem.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

struct tmp {
    char dir[PATH_MAX]; /* real path, no symlinks, so messages are predictable */
};

static void
tmp_make(struct tmp *t)
{
    char templ[] = "/tmp/celer-test-conf-parse-XXXXXX";

    assert_non_null(mkdtemp(templ));
    assert_non_null(realpath(templ, t->dir));
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
tmp_remove(struct tmp *t)
{
    assert_int_equal(nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static char *
tmp_path(const struct tmp *t, const char *rel)
{
    return xasprintf("%s/%s", t->dir, rel);
}

static void
tmp_write(const struct tmp *t, const char *rel, const char *text)
{
    char *p = tmp_path(t, rel);
    FILE *f = fopen(p, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    free(p);
}

static void
tmp_mkdir(const struct tmp *t, const char *rel)
{
    char *p = tmp_path(t, rel);

    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

/* The diagnostics as celerd -t prints them, with dir replaced by "$D". */
static char *
diags_text(const struct conf_diags *d, const char *dir)
{
    char *raw = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&raw, &len);
    struct buf out;
    size_t dlen = dir ? strlen(dir) : 0;

    assert_non_null(f);
    conf_diags_print(d, f);
    assert_int_equal(fclose(f), 0);
    buf_init(&out, BUF_UNLIMITED);
    for (const char *p = raw; *p;) {
        if (dlen && strncmp(p, dir, dlen) == 0) {
            buf_append_cstr(&out, "$D");
            p += dlen;
        } else {
            buf_append(&out, p, 1);
            p++;
        }
    }
    free(raw);
    return buf_steal_cstr(&out);
}

static void
assert_diags(const struct conf_diags *d, const char *dir, const char *want)
{
    char *got = diags_text(d, dir);

    if (strcmp(got, want) != 0) {
        print_error("diagnostics:\n%s\nwanted:\n%s\n", got, want);
        free(got);
        fail();
    }
    free(got);
}

/* The keywords of a scope's items, space-separated ("a b S"). */
static char *
kid_keywords(const struct conf_node *n)
{
    struct buf out;

    buf_init(&out, BUF_UNLIMITED);
    for (size_t i = 0; i < n->n; i++) {
        buf_printf(&out, "%s%s", i ? " " : "", n->kids[i]->keyword);
    }
    return buf_steal_cstr(&out);
}

static void
assert_kids(const struct conf_node *n, const char *want)
{
    char *got = kid_keywords(n);

    if (strcmp(got, want) != 0) {
        print_error("items \"%s\", wanted \"%s\"\n", got, want);
        free(got);
        fail();
    }
    free(got);
}

static struct conf_ast *
parse(const char *text, struct conf_diags *d)
{
    conf_diags_init(d);
    return conf_parse_text("t.conf", strv_from_cstr(text), d);
}

static void
assert_loc(struct conf_loc loc, const char *file, unsigned line, unsigned col)
{
    assert_string_equal(loc.file, file);
    assert_int_equal(loc.line, line);
    assert_int_equal(loc.col, col);
}

/* ---- syntax tree ---- */

static void
test_options_and_values(void **state)
{
    struct conf_diags d;
    struct conf_ast *ast = parse("a = b\n"
                                 "c = \"d e\"; f = 'g'\n"
                                 "arr = ( 1 \"two\" ( 3 4 ) ; [ k = v ] )\n"
                                 "dict = [ k1 = v1 \"k 2\" = ( x y ) k3 = [ n = 1 ] ]\n"
                                 "empty = ( )\n",
                                 &d);
    const struct conf_node *r = ast->root;
    const struct conf_value *v;

    (void)state;
    assert_int_equal(d.n, 0);
    assert_kids(r, "a c f arr dict empty");
    for (size_t i = 0; i < r->n; i++) {
        assert_int_equal(r->kids[i]->kind, CONF_NODE_OPTION);
        assert_null(r->kids[i]->name);
        assert_false(r->kids[i]->readonly);
    }
    assert_loc(r->kids[0]->loc, "t.conf", 1, 1);
    v = r->kids[0]->value;
    assert_int_equal(v->kind, CONF_VALUE_SCALAR);
    assert_string_equal(v->text, "b");
    assert_false(v->quoted);
    assert_loc(v->loc, "t.conf", 1, 5);

    v = r->kids[1]->value;
    assert_string_equal(v->text, "d e");
    assert_true(v->quoted);
    assert_loc(r->kids[2]->loc, "t.conf", 2, 12);
    assert_string_equal(r->kids[2]->value->text, "g");

    v = r->kids[3]->value;
    assert_int_equal(v->kind, CONF_VALUE_ARRAY);
    assert_loc(v->loc, "t.conf", 3, 7);
    assert_int_equal(v->n, 4);
    assert_string_equal(v->items[0]->text, "1");
    assert_string_equal(v->items[1]->text, "two");
    assert_true(v->items[1]->quoted);
    assert_int_equal(v->items[2]->kind, CONF_VALUE_ARRAY);
    assert_int_equal(v->items[2]->n, 2);
    assert_string_equal(v->items[2]->items[1]->text, "4");
    assert_int_equal(v->items[3]->kind, CONF_VALUE_DICT);
    assert_string_equal(v->items[3]->keys[0], "k");
    assert_string_equal(v->items[3]->items[0]->text, "v");

    v = r->kids[4]->value;
    assert_int_equal(v->kind, CONF_VALUE_DICT);
    assert_int_equal(v->n, 3);
    assert_string_equal(v->keys[0], "k1");
    assert_string_equal(v->keys[1], "k 2");
    assert_string_equal(v->keys[2], "k3");
    assert_string_equal(v->items[0]->text, "v1");
    assert_int_equal(v->items[1]->kind, CONF_VALUE_ARRAY);
    assert_int_equal(v->items[2]->kind, CONF_VALUE_DICT);
    assert_string_equal(v->items[2]->keys[0], "n");

    v = r->kids[5]->value;
    assert_int_equal(v->kind, CONF_VALUE_ARRAY);
    assert_int_equal(v->n, 0);
    conf_ast_free(ast);
    conf_diags_release(&d);
}

static void
test_scopes(void **state)
{
    struct conf_diags d;
    struct conf_ast *ast = parse("ESMTP_Listener {\n"
                                 "  Listen \":25\" { Peer 10.0.0.0/8 { a = 1 } }\n"
                                 "}\n"
                                 "binding \"b1\" { } Security{user=x}\n"
                                 "ec_logger 'l1' {;}\n",
                                 &d);
    const struct conf_node *r = ast->root, *l, *lsn, *peer;

    (void)state;
    assert_int_equal(d.n, 0);
    assert_string_equal(r->keyword, "global");
    assert_kids(r, "ESMTP_Listener binding Security ec_logger");
    l = r->kids[0];
    assert_int_equal(l->kind, CONF_NODE_SCOPE);
    assert_null(l->name);
    assert_loc(l->loc, "t.conf", 1, 1);
    assert_kids(l, "Listen");
    lsn = l->kids[0];
    assert_string_equal(lsn->name, ":25");
    assert_loc(lsn->loc, "t.conf", 2, 3);
    assert_loc(lsn->name_loc, "t.conf", 2, 10);
    peer = lsn->kids[0];
    assert_string_equal(peer->keyword, "Peer");
    assert_string_equal(peer->name, "10.0.0.0/8");
    assert_loc(peer->name_loc, "t.conf", 2, 23);
    assert_kids(peer, "a");
    assert_string_equal(r->kids[1]->name, "b1");
    assert_int_equal(r->kids[1]->n, 0);
    assert_null(r->kids[2]->name);
    assert_kids(r->kids[2], "user");
    assert_string_equal(r->kids[3]->name, "l1");
    conf_ast_free(ast);
    conf_diags_release(&d);
}

/* ---- error recovery ---- */

struct recover_case {
    const char *name;
    const char *text;
    size_t len;              /* 0: strlen */
    const char *diags;       /* exactly what celerd -t prints */
    const char *top;         /* keywords of the top-level items */
    const char *first_scope; /* keywords inside the first top-level item, or NULL */
};

static const struct recover_case recover_cases[] = {
    {"several errors in one run", "a = 1\nb = = 2\nc = 3\n\"str\" = 4\nd = 5\n", 0,
     "t.conf:2:5: error: expected a value (word, \"string\", ( array ) or [ dictionary ]), got "
     "'='\n"
     "t.conf:4:1: error: expected an option name or scope keyword, got string \"str\"\n",
     "a c d", NULL},
    {"stray punctuation", "= 1\n( a )\nb = 2\n", 0,
     "t.conf:1:1: error: expected an option name or scope keyword, got '='\n"
     "t.conf:2:1: error: expected an option name or scope keyword, got '('\n",
     "b", NULL},
    {"unclosed scope keeps its items", "Binding \"b\" {\n x = 1\n", 0,
     "t.conf:1:13: error: '{' is never closed (missing '}' before end of file)\n", "Binding", "x"},
    {"unmatched close brace", "}\na = 1\n", 0,
     "t.conf:1:1: error: expected an option or scope (unmatched '}'), got '}'\n", "a", NULL},
    {"unterminated string", "a = \"abc\nb = 2\n", 0, "t.conf:1:5: error: unterminated string\n", "",
     NULL},
    {"unterminated comment", "a = 1 /* x\nb = 2", 0, "t.conf:1:7: error: unterminated /* comment\n",
     "a", NULL},
    {"lexer errors and syntax errors together", "a = 'x\0y'\nb = 2\nc = \"q\n", 23,
     "t.conf:1:7: error: NUL byte in string\n"
     "t.conf:3:5: error: unterminated string\n",
     "b", NULL},
    {"missing brace after a scope name", "Binding \"b\" x = 1\nc = 2\n", 0,
     "t.conf:1:13: error: expected '{' after the scope name, got word \"x\"\n", "c", NULL},
    {"word without = or { before a close brace", "Binding \"b\" { foo }\nc = 2\n", 0,
     "t.conf:1:19: error: expected '=' or '{', got '}'\n", "Binding c", ""},
    {"missing value before a close brace", "Binding \"b\" { x = }\nc = 2\n", 0,
     "t.conf:1:19: error: expected a value (word, \"string\", ( array ) or [ dictionary ]), got "
     "'}'\n",
     "Binding c", ""},
    {"array cut by a close brace", "Binding \"b\" { a = ( 1 }\nc = 2\n", 0,
     "t.conf:1:23: error: expected a value (word, \"string\", ( array ) or [ dictionary ]), got "
     "'}'\n",
     "Binding c", ""},
    {"bad dictionary key: one error, the line is skipped", "a = [ = ]\nb = 1\n", 0,
     "t.conf:1:7: error: expected a dictionary key or ']', got '='\n", "b", NULL},
    {"dictionary key without =", "a = [ k v ]\nb = 1\n", 0,
     "t.conf:1:9: error: expected '=' after dictionary key, got word \"v\"\n", "b", NULL},
    {"dictionary cut by a close brace keeps the brace", "Binding \"b\" { a = [ k = 1 }\nc = 2\n", 0,
     "t.conf:1:27: error: expected a dictionary key or ']', got '}'\n", "Binding c", ""},
    {"dictionary at end of file", "a = [ k = 1", 0,
     "t.conf:1:12: error: expected a dictionary key or ']', got end of file\n", "", NULL},
    {"values nested too deep: one error, the line is skipped", "a = ((((((((( x )))))))))\nb = 1\n",
     0, "t.conf:1:15: error: values nested deeper than 8 levels\n", "b", NULL},
    {"values nested eight deep are fine", "a = (((((((( x ))))))))\nb = 1\n", 0, "", "a b", NULL},
    {"include without a path keeps the close brace", "Binding \"b\" { include }\nc = 2\n", 0,
     "t.conf:1:23: error: expected a file or directory name after include, got '}'\n", "Binding c",
     ""},
    {"include at end of file", "include", 0,
     "t.conf:1:8: error: expected a file or directory name after include, got end of file\n", "",
     NULL},
};

/* Runs every case and reports each mismatch before failing. */
static void
test_recovery(void **state)
{
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < NELEM(recover_cases); i++) {
        const struct recover_case *rc = &recover_cases[i];
        struct conf_diags d;
        struct conf_ast *ast;
        char *got;

        conf_diags_init(&d);
        ast = conf_parse_text("t.conf", strv_make(rc->text, rc->len ? rc->len : strlen(rc->text)),
                              &d);
        got = diags_text(&d, NULL);
        if (strcmp(got, rc->diags) != 0) {
            print_error("case \"%s\": diagnostics\n%swanted\n%s\n", rc->name, got, rc->diags);
            bad++;
        }
        free(got);
        got = kid_keywords(ast->root);
        if (strcmp(got, rc->top) != 0) {
            print_error("case \"%s\": items \"%s\", wanted \"%s\"\n", rc->name, got, rc->top);
            bad++;
        }
        free(got);
        if (rc->first_scope && ast->root->n > 0) {
            got = kid_keywords(ast->root->kids[0]);
            if (strcmp(got, rc->first_scope) != 0) {
                print_error("case \"%s\": first scope items \"%s\", wanted \"%s\"\n", rc->name, got,
                            rc->first_scope);
                bad++;
            }
            free(got);
        }
        conf_ast_free(ast);
        conf_diags_release(&d);
    }
    assert_int_equal(bad, 0);
}

/* Past CONF_DIAG_MAX problems are counted, not stored, and the count is printed. */
static void
test_diag_ceiling(void **state)
{
    struct buf text;
    struct conf_diags d;
    struct conf_ast *ast;
    char *s, *got;

    (void)state;
    buf_init(&text, BUF_UNLIMITED);
    for (int i = 0; i < CONF_DIAG_MAX + 50; i++) {
        buf_append_cstr(&text, "= x\n");
    }
    s = buf_steal_cstr(&text);
    ast = parse(s, &d);
    assert_int_equal(d.n, CONF_DIAG_MAX);
    assert_int_equal(d.errors, CONF_DIAG_MAX + 50);
    assert_string_equal(d.items[CONF_DIAG_MAX - 1].where, "t.conf:200:1");
    got = diags_text(&d, NULL);
    assert_non_null(strstr(got, "t.conf:200:1: error: expected an option name or scope keyword, "
                                "got '='\ncelerd: 50 more problems not shown\n"));
    free(got);
    free(s);
    conf_ast_free(ast);
    conf_diags_release(&d);
}

/* ---- includes ---- */

static void
test_include_relative_to_including_file(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf_ast *ast;
    char *main_path;

    (void)state;
    tmp_make(&t);
    tmp_mkdir(&t, "sub");
    tmp_write(&t, "main.conf", "a = 1\nINCLUDE \"sub/inc.conf\"\nz = 9\n");
    tmp_write(&t, "sub/inc.conf", "b = 2\ninclude inc2.conf\n");
    tmp_write(&t, "sub/inc2.conf", "c = 3\n");
    tmp_write(&t, "inc2.conf", "wrong = 1\n");
    main_path = tmp_path(&t, "main.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(main_path, &d);
    assert_diags(&d, t.dir, "");
    assert_kids(ast->root, "a b c z");
    assert_int_equal(ast->nfiles, 3);
    assert_string_equal(ast->files[0], main_path);
    assert_loc(ast->root->kids[1]->loc, ast->files[1], 1, 1);
    assert_non_null(strstr(ast->files[1], "/sub/inc.conf"));
    assert_non_null(strstr(ast->files[2], "/sub/inc2.conf"));
    assert_loc(ast->root->kids[2]->loc, ast->files[2], 1, 1);
    assert_loc(ast->root->kids[3]->loc, main_path, 3, 1);
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(main_path);
    tmp_remove(&t);
}

static void
test_include_directory(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf_ast *ast;
    char *p, *fifo, *target;

    (void)state;
    tmp_make(&t);
    tmp_mkdir(&t, "conf.d");
    tmp_mkdir(&t, "conf.d/sub");
    tmp_mkdir(&t, "empty.d");
    tmp_write(&t, "conf.d/b.conf", "b = 1\n");
    tmp_write(&t, "conf.d/a.conf", "a = 1\n");
    tmp_write(&t, "conf.d/B.conf", "B0 = 1\n");
    tmp_write(&t, "conf.d/_u.conf", "u = 1\n");
    tmp_write(&t, "conf.d/.hidden.conf", "hidden = 1\n");
    tmp_write(&t, "conf.d/z~", "z = 1\n");
    tmp_write(&t, "conf.d/sub/s.conf", "recursed = 1\n");
    tmp_write(&t, "target.conf", "link = 1\n");
    target = tmp_path(&t, "target.conf");
    p = tmp_path(&t, "conf.d/l.conf");
    assert_int_equal(symlink(target, p), 0);
    free(p);
    fifo = tmp_path(&t, "conf.d/f.conf");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    tmp_write(&t, "main.conf",
              "Binding \"x\" {\n  include \"conf.d\"\n}\ninclude 'conf.d/'\ninclude empty.d\n");
    p = tmp_path(&t, "main.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    assert_diags(&d, t.dir, "");
    /* byte order: 'B' < '_' < 'a' < 'b' < 'l' < 'z'; no dot-file, no FIFO, no recursion */
    assert_kids(ast->root, "Binding B0 u a b link z");
    assert_kids(ast->root->kids[0], "B0 u a b link z");
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);
    free(fifo);
    free(target);
    tmp_remove(&t);
}

static void
test_readonly_include(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf_ast *ast;
    const struct conf_node *r;
    char *p;

    (void)state;
    tmp_make(&t);
    tmp_mkdir(&t, "rodir");
    tmp_write(&t, "rw.conf", "w = 1\n");
    tmp_write(&t, "ro.conf", "r = 1\nS { s = 1 }\ninclude \"nested.conf\"\n");
    tmp_write(&t, "nested.conf", "n = 1\n");
    tmp_write(&t, "rodir/x.conf", "x = 1\n");
    tmp_write(&t, "main.conf",
              "m = 1\ninclude \"rw.conf\"\nreadonly_include \"ro.conf\"\n"
              "ReadOnly_Include \"rodir\"\n");
    p = tmp_path(&t, "main.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    assert_diags(&d, t.dir, "");
    r = ast->root;
    assert_kids(r, "m w r S n x");
    assert_false(r->kids[0]->readonly);
    assert_false(r->kids[1]->readonly);
    assert_true(r->kids[2]->readonly);
    assert_true(r->kids[3]->readonly);
    assert_true(r->kids[3]->kids[0]->readonly);
    assert_true(r->kids[4]->readonly); /* plain include inside a read-only file */
    assert_true(r->kids[5]->readonly);
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);
    tmp_remove(&t);
}

static void
test_include_cycles(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf_ast *ast;
    char *p;

    (void)state;
    tmp_make(&t);
    tmp_write(&t, "a.conf", "x = 1\ninclude \"b.conf\"\n");
    tmp_write(&t, "b.conf", "y = 2\ninclude \"a.conf\"\nw = 3\n");
    tmp_write(&t, "s.conf", "include \"s.conf\"\nz = 1\n");
    tmp_write(&t, "twice.conf", "include c.conf\ninclude c.conf\n");
    tmp_write(&t, "c.conf", "c = 1\n");

    p = tmp_path(&t, "a.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    assert_diags(&d, t.dir,
                 "$D/b.conf:2:9: error: include cycle: $D/a.conf includes itself (through "
                 "$D/b.conf)\n");
    assert_kids(ast->root, "x y w");
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);

    p = tmp_path(&t, "s.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    assert_diags(&d, t.dir,
                 "$D/s.conf:1:9: error: include cycle: $D/s.conf includes itself (through "
                 "$D/s.conf)\n");
    assert_kids(ast->root, "z");
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);

    /* the same file twice is not a cycle */
    p = tmp_path(&t, "twice.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    assert_diags(&d, t.dir, "");
    assert_kids(ast->root, "c c");
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);
    tmp_remove(&t);
}

static void
test_include_depth_limit(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf_ast *ast;
    char *p;

    (void)state;
    tmp_make(&t);
    for (int i = 0; i <= 20; i++) {
        char name[32], text[64];

        snprintf(name, sizeof(name), "f%d.conf", i);
        snprintf(text, sizeof(text), "o%d = %d\ninclude \"f%d.conf\"\n", i, i, i + 1);
        tmp_write(&t, name, text);
    }
    p = tmp_path(&t, "f0.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    /* the main file and 15 nested includes: 16 files deep */
    assert_diags(&d, t.dir, "$D/f15.conf:2:9: error: includes nested deeper than 16 files\n");
    assert_int_equal(ast->nfiles, CONF_INCLUDE_DEPTH);
    assert_int_equal(ast->root->n, CONF_INCLUDE_DEPTH);
    assert_string_equal(ast->root->kids[15]->keyword, "o15");
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);
    tmp_remove(&t);
}

static void
test_include_missing_and_special(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf_ast *ast;
    char *p, *fifo;

    (void)state;
    tmp_make(&t);
    fifo = tmp_path(&t, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    tmp_write(&t, "m.conf",
              "a = 1\ninclude \"nope.conf\"\ninclude \"fifo\"\nb = 2\ninclude \"/dev/null\"\n");
    p = tmp_path(&t, "m.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    /* a FIFO would block the load forever; a device is not a configuration file */
    assert_diags(&d, t.dir,
                 "$D/m.conf:2:9: error: cannot include $D/nope.conf: No such file or directory\n"
                 "$D/m.conf:3:9: error: cannot include $D/fifo: not a regular file or directory\n"
                 "$D/m.conf:5:9: error: cannot include /dev/null: not a regular file or "
                 "directory\n");
    assert_kids(ast->root, "a b");
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);

    /* a missing main file has no position */
    p = tmp_path(&t, "missing.conf");
    conf_diags_init(&d);
    ast = conf_parse_file(p, &d);
    assert_diags(&d, t.dir,
                 "celerd: error: cannot read $D/missing.conf: No such file or directory\n");
    assert_int_equal(ast->root->n, 0);
    assert_int_equal(ast->nfiles, 0);
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(p);
    free(fifo);
    tmp_remove(&t);
}

/* conf_parse_text resolves absolute includes; items land in the enclosing scope. */
static void
test_include_from_text(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf_ast *ast;
    char *inc, *text;

    (void)state;
    tmp_make(&t);
    tmp_write(&t, "inc.conf", "Domain \"d\" { x = 1 }\n");
    inc = tmp_path(&t, "inc.conf");
    text = xasprintf("Binding_Group \"g\" {\n  include \"%s\"\n  y = 2\n}\n", inc);
    ast = parse(text, &d);
    assert_diags(&d, t.dir, "");
    assert_kids(ast->root, "Binding_Group");
    assert_kids(ast->root->kids[0], "Domain y");
    assert_string_equal(ast->root->kids[0]->kids[0]->loc.file, inc);
    conf_ast_free(ast);
    conf_diags_release(&d);
    free(text);
    free(inc);
    tmp_remove(&t);
}

/* ---- rendering ---- */

static void
test_render_round_trip(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"plain", "plain"},
        {"\"quoted\"", "\"quoted\""},
        {"\"\"", "\"\""},
        {"/var/x", "\"/var/x\""},
        {"'say \"hi\"'", "\"say \\\"hi\\\"\""},
        {"( 1 \"two words\" ( a ) )", "( 1 \"two words\" ( a ) )"},
        {"()", "( )"},
        {"[ k = v \"k 2\" = ( x ) e = [ ] ]", "[ k = v \"k 2\" = ( x ) e = [ ] ]"},
        {"\"/^mx\\.example$/\"", "\"/^mx\\.example$/\""},
        {"'x\\\"'", "\"x\\\\\"\""}, /* x\" in quotes: the backslash stays, the quote escapes */
        {"a\\", "a\\"},
        /* a word ending in a backslash cannot be quoted (\" would escape): stays bare */
        {"/x\\", "/x\\"},
        {"[ /k\\ = v ]", "[ /k\\ = v ]"},
        {"[ \"\" = v ]", "[ \"\" = v ]"},                       /* an empty key */
        {"[ \"a\fb\" = \"c\vd\" ]", "[ \"a\fb\" = \"c\vd\" ]"}, /* \f and \v are blanks */
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        char *text = xasprintf("v = %s\n", cases[i].in);
        struct conf_diags d;
        struct conf_ast *ast = parse(text, &d), *again;
        struct buf out;
        char *first, *text2;

        assert_int_equal(d.n, 0);
        buf_init(&out, BUF_UNLIMITED);
        conf_value_render(ast->root->kids[0]->value, &out);
        first = buf_steal_cstr(&out);
        if (strcmp(first, cases[i].out) != 0) {
            print_error("render of %s: %s, wanted %s\n", cases[i].in, first, cases[i].out);
            fail();
        }
        /* the rendering parses back to the same value */
        text2 = xasprintf("v = %s\n", first);
        again = parse(text2, &d);
        assert_int_equal(d.n, 0);
        buf_init(&out, BUF_UNLIMITED);
        conf_value_render(again->root->kids[0]->value, &out);
        assert_string_equal(buf_data(&out).ptr, first);
        buf_release(&out);
        conf_ast_free(again);
        conf_ast_free(ast);
        conf_diags_release(&d);
        free(text2);
        free(first);
        free(text);
    }
}

/* ---- repeated scopes merge (conf_build) ---- */

/* Diagnostics other than the "not implemented yet" warnings most options carry. */
static char *
real_diags(const struct conf_diags *d)
{
    struct buf out;

    buf_init(&out, BUF_UNLIMITED);
    for (size_t i = 0; i < d->n; i++) {
        if (strstr(d->items[i].msg, "does not implement yet") == NULL) {
            buf_printf(&out, "%s: %s: %s\n", d->items[i].where,
                       d->items[i].level == CONF_DIAG_ERROR ? "error" : "warning", d->items[i].msg);
        }
    }
    return buf_steal_cstr(&out);
}

static size_t
count_kids(const struct conf_scope *s, enum conf_scope_type type)
{
    size_t n = 0;

    for (size_t i = 0; i < s->nkids; i++) {
        n += s->kids[i]->type == type;
    }
    return n;
}

static void
test_repeated_scopes_merge(void **state)
{
    struct conf_diags d;
    struct conf *c;
    const struct conf_scope *g, *dom;
    char *got;

    (void)state;
    conf_diags_init(&d);
    c = conf_load_text("t.conf",
                       "Binding_Group \"g\" { Max_Outbound_Connections = 3 }\n"
                       "Binding_Group \"g\" { Retry_Interval = 60 Binding \"b\" { } }\n"
                       "Binding_Group \"g\" { Max_Outbound_Connections = 4 }\n"
                       "Domain \"A.example\" { TLS = required }\n"
                       "Domain \"a.EXAMPLE\" { Retry_Interval = 5 }\n"
                       "Binding \"B\" { }\n",
                       &d);
    assert_non_null(c);
    got = real_diags(&d);
    assert_string_equal(got, "t.conf:3:21: warning: option \"max_outbound_connections\" is set "
                             "again in this scope; this value replaces the one at t.conf:1:21\n");
    free(got);
    assert_int_equal(count_kids(c->root, CONF_SCOPE_BINDING_GROUP), 2); /* g and default */
    g = conf_binding_group(c, "g");
    assert_non_null(g);
    assert_int_equal(conf_scope_get(g, "max_outbound_connections")->val.i, 4);
    assert_int_equal(conf_scope_get(g, "retry_interval")->val.i, 60);
    assert_int_equal(g->loc.line, 1);
    assert_ptr_equal(conf_binding(c, "b")->parent, g);
    /* domain names are case-insensitive: one scope */
    assert_int_equal(count_kids(c->root, CONF_SCOPE_DOMAIN), 1);
    dom = conf_match_domain(c->root, "a.example");
    assert_non_null(dom);
    assert_string_equal(conf_scope_get(dom, "tls")->val.s, "required");
    assert_int_equal(conf_scope_get(dom, "retry_interval")->val.i, 5);
    /* binding names are case-sensitive: "B" is not "b" */
    assert_non_null(conf_binding(c, "B"));
    assert_ptr_not_equal(conf_binding(c, "B"), conf_binding(c, "b"));
    conf_unref(c);
    conf_diags_release(&d);
}

static void
test_repeated_scopes_across_files(void **state)
{
    struct tmp t;
    struct conf_diags d;
    struct conf *c;
    char *p;

    (void)state;
    tmp_make(&t);
    tmp_mkdir(&t, "conf.d");
    tmp_write(&t, "conf.d/1.conf", "Binding_Group \"g\" { Binding \"b1\" { } }\n");
    tmp_write(&t, "conf.d/2.conf", "Binding_Group \"g\" { Binding \"b2\" { } }\n");
    tmp_write(&t, "main.conf", "include \"conf.d\"\n");
    p = tmp_path(&t, "main.conf");
    conf_diags_init(&d);
    c = conf_load(p, &d);
    assert_non_null(c);
    assert_int_equal(d.errors, 0);
    assert_ptr_equal(conf_binding(c, "b1")->group, conf_binding_group(c, "g"));
    assert_ptr_equal(conf_binding(c, "b2")->group, conf_binding_group(c, "g"));
    assert_int_equal(conf_binding_group(c, "g")->nkids, 2);
    conf_unref(c);
    conf_diags_release(&d);
    free(p);
    tmp_remove(&t);
}

static void
test_binding_names_unique(void **state)
{
    static const struct {
        const char *text;
        const char *diags;
    } cases[] = {
        {"Binding_Group \"g\" { Binding \"b\" { } }\nBinding \"b\" { }\n",
         "t.conf:2:1: error: binding \"b\" is already declared in another scope at t.conf:1:21\n"},
        {"Binding_Group \"g\" { Binding \"b\" { } }\nBinding_Group \"h\" { Binding \"b\" { } }\n",
         "t.conf:2:21: error: binding \"b\" is already declared in another scope at t.conf:1:21\n"},
        {"Pathway \"p\" { }\nPathway_Group \"pg\" { Pathway \"p\" { } }\n",
         "t.conf:2:22: error: pathway \"p\" is already declared in another scope at t.conf:1:1\n"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct conf_diags d;
        struct conf *c;
        char *got;

        conf_diags_init(&d);
        c = conf_load_text("t.conf", cases[i].text, &d);
        assert_null(c);
        got = real_diags(&d);
        assert_string_equal(got, cases[i].diags);
        free(got);
        conf_diags_release(&d);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_and_values),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_diag_ceiling),
        cmocka_unit_test(test_include_relative_to_including_file),
        cmocka_unit_test(test_include_directory),
        cmocka_unit_test(test_readonly_include),
        cmocka_unit_test(test_include_cycles),
        cmocka_unit_test(test_include_depth_limit),
        cmocka_unit_test(test_include_missing_and_special),
        cmocka_unit_test(test_include_from_text),
        cmocka_unit_test(test_render_round_trip),
        cmocka_unit_test(test_repeated_scopes_merge),
        cmocka_unit_test(test_repeated_scopes_across_files),
        cmocka_unit_test(test_binding_names_unique),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
