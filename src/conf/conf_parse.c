/*
 * conf_parse: configuration files to syntax tree (see conf_parse.h).
 */
#include "conf/conf_parse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf_lex.h"
#include "core/buf.h"
#include "core/mem.h"

#define CONF_FILE_MAX (64 * 1024 * 1024)

struct conf_parser {
    struct conf_ast *ast;
    struct conf_diags *diags;
    /* include stack: real paths of the files being parsed */
    char *stack[CONF_INCLUDE_DEPTH + 1];
    size_t depth;
};

/* One file being parsed. */
struct conf_pfile {
    struct conf_parser *p;
    struct conf_lex lx;
    const char *file; /* borrowed from ast->files */
    const char *dir;  /* directory for relative includes */
    struct conf_tok peeked;
    bool has_peek;
    bool readonly;
};

static void conf_parse_body(struct conf_pfile *pf, struct conf_node *scope,
                            const struct conf_tok *open);

static const char *
conf_ast_add_file(struct conf_ast *ast, const char *path)
{
    ast->files = xgrow(ast->files, &ast->files_cap, ast->nfiles + 1, sizeof(*ast->files));
    ast->files[ast->nfiles] = xstrdup(path);
    return ast->files[ast->nfiles++];
}

static struct conf_loc
conf_tok_loc(const struct conf_pfile *pf, const struct conf_tok *t)
{
    return (struct conf_loc){pf->file, t->line, t->col};
}

static struct conf_tok
conf_next(struct conf_pfile *pf)
{
    if (pf->has_peek) {
        pf->has_peek = false;
        return pf->peeked;
    }
    return conf_lex_next(&pf->lx);
}

/* Token text must be copied before the next conf_next for strings. */
static void
conf_unget(struct conf_pfile *pf, struct conf_tok t)
{
    pf->peeked = t;
    pf->has_peek = true;
}

static void
conf_node_add(struct conf_node *scope, struct conf_node *kid)
{
    scope->kids = xgrow(scope->kids, &scope->cap, scope->n + 1, sizeof(*scope->kids));
    scope->kids[scope->n++] = kid;
}

static void
conf_node_free(struct conf_node *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        conf_node_free(n->kids[i]);
    }
    free(n->kids);
    free(n->keyword);
    free(n->name);
    conf_value_free(n->value);
    free(n);
}

void
conf_value_free(struct conf_value *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        conf_value_free(v->items[i]);
        if (v->keys) {
            free(v->keys[i]);
        }
    }
    free(v->items);
    free(v->keys);
    free(v->text);
    free(v);
}

void
conf_ast_free(struct conf_ast *ast)
{
    if (ast == NULL) {
        return;
    }
    conf_node_free(ast->root);
    for (size_t i = 0; i < ast->nfiles; i++) {
        free(ast->files[i]);
    }
    free(ast->files);
    free(ast);
}

static void
conf_syntax_error(struct conf_pfile *pf, const struct conf_tok *t, const char *expected)
{
    struct conf_loc loc = conf_tok_loc(pf, t);

    if (t->kind == CONF_TOK_ERROR) {
        conf_error(pf->p->diags, &loc, "%.*s", STRV_FMT(t->text));
    } else if (t->kind == CONF_TOK_WORD || t->kind == CONF_TOK_STRING) {
        conf_error(pf->p->diags, &loc, "expected %s, got %s \"%.*s\"", expected,
                   conf_tok_kind_name(t->kind), (int)(t->text.len > 60 ? 60 : t->text.len),
                   t->text.ptr);
    } else {
        conf_error(pf->p->diags, &loc, "expected %s, got %s", expected,
                   conf_tok_kind_name(t->kind));
    }
}

/* Error recovery: skip the rest of the line of token t (stopping before '}' or EOF). */
static void
conf_recover(struct conf_pfile *pf, const struct conf_tok *t)
{
    unsigned line = t->line;

    for (;;) {
        struct conf_tok n = conf_next(pf);

        if (n.kind == CONF_TOK_EOF || n.kind == CONF_TOK_RBRACE || n.line != line) {
            conf_unget(pf, n);
            return;
        }
    }
}

/*
 * After a syntax error at token t: a '}' or EOF is kept for the enclosing
 * scope (so a scope is not left unclosed), anything else skips the line.
 */
static void
conf_skip_after_error(struct conf_pfile *pf, const struct conf_tok *t)
{
    if (t->kind == CONF_TOK_RBRACE || t->kind == CONF_TOK_EOF) {
        conf_unget(pf, *t);
    } else {
        conf_recover(pf, t);
    }
}

static struct conf_value *
conf_value_new(enum conf_value_kind kind, struct conf_loc loc)
{
    struct conf_value *v = XNEW(struct conf_value);

    v->kind = kind;
    v->loc = loc;
    return v;
}

static void
conf_value_push(struct conf_value *v, char *key, struct conf_value *item)
{
    size_t cap = v->cap;

    v->items = xgrow(v->items, &cap, v->n + 1, sizeof(*v->items));
    if (v->kind == CONF_VALUE_DICT) {
        size_t kcap = v->cap;

        v->keys = xgrow(v->keys, &kcap, v->n + 1, sizeof(*v->keys));
        v->keys[v->n] = key;
    }
    v->cap = cap;
    v->items[v->n++] = item;
}

static struct conf_value *conf_parse_value(struct conf_pfile *pf, unsigned depth);

/* After '(' or '[': elements until the closing token. NULL on error (reported). */
static struct conf_value *
conf_parse_compound(struct conf_pfile *pf, const struct conf_tok *open, unsigned depth)
{
    bool dict = open->kind == CONF_TOK_LBRACKET;
    enum conf_tok_kind close = dict ? CONF_TOK_RBRACKET : CONF_TOK_RPAREN;
    struct conf_value *v =
        conf_value_new(dict ? CONF_VALUE_DICT : CONF_VALUE_ARRAY, conf_tok_loc(pf, open));

    for (;;) {
        struct conf_tok t = conf_next(pf);
        struct conf_value *item;
        char *key = NULL;

        if (t.kind == close) {
            return v;
        }
        if (t.kind == CONF_TOK_SEMICOLON) {
            continue;
        }
        if (dict) {
            struct conf_tok eq;

            if (t.kind != CONF_TOK_WORD && t.kind != CONF_TOK_STRING) {
                conf_syntax_error(pf, &t, "a dictionary key or ']'");
                conf_skip_after_error(pf, &t);
                goto fail;
            }
            key = strv_dup(t.text);
            eq = conf_next(pf);
            if (eq.kind != CONF_TOK_EQUALS) {
                conf_syntax_error(pf, &eq, "'=' after dictionary key");
                conf_skip_after_error(pf, &eq);
                free(key);
                goto fail;
            }
        } else {
            conf_unget(pf, t);
        }
        item = conf_parse_value(pf, depth + 1);
        if (item == NULL) {
            free(key);
            conf_value_free(v);
            return NULL;
        }
        conf_value_push(v, key, item);
    }
fail:
    conf_value_free(v);
    return NULL;
}

static struct conf_value *
conf_parse_value(struct conf_pfile *pf, unsigned depth)
{
    struct conf_tok t = conf_next(pf);
    struct conf_value *v;

    if (depth > CONF_VALUE_DEPTH) {
        struct conf_loc loc = conf_tok_loc(pf, &t);

        conf_error(pf->p->diags, &loc, "values nested deeper than %d levels", CONF_VALUE_DEPTH);
        conf_skip_after_error(pf, &t);
        return NULL;
    }
    switch (t.kind) {
    case CONF_TOK_WORD:
    case CONF_TOK_STRING:
        v = conf_value_new(CONF_VALUE_SCALAR, conf_tok_loc(pf, &t));
        v->text = strv_dup(t.text);
        v->quoted = t.kind == CONF_TOK_STRING;
        return v;
    case CONF_TOK_LPAREN:
    case CONF_TOK_LBRACKET:
        return conf_parse_compound(pf, &t, depth);
    default:
        conf_syntax_error(pf, &t, "a value (word, \"string\", ( array ) or [ dictionary ])");
        conf_skip_after_error(pf, &t);
        return NULL;
    }
}

static int
conf_read_file(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int err = 0;

    if (fd < 0) {
        return -errno;
    }
    for (;;) {
        size_t room;
        char *dst = try_buf_reserve(out, 65536, &room);
        ssize_t n;

        if (dst == NULL) {
            err = -EFBIG;
            break;
        }
        n = read(fd, dst, room);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = -errno;
            break;
        }
        if (n == 0) {
            break;
        }
        buf_commit(out, (size_t)n);
    }
    (void)close(fd); /* read-only descriptor */
    return err;
}

static char *
conf_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        return xstrdup(".");
    }
    if (slash == path) {
        return xstrdup("/");
    }
    return xstrndup(path, (size_t)(slash - path));
}

static void conf_parse_path(struct conf_parser *p, struct conf_node *scope, const char *path,
                            const struct conf_loc *from, bool readonly);

static int
conf_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
conf_include_dir(struct conf_parser *p, struct conf_node *scope, const char *dir,
                 const struct conf_loc *from, bool readonly)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (d == NULL) {
        conf_error(p->diags, from, "cannot read include directory %s: %s", dir, strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            names = xgrow(names, &cap, n + 1, sizeof(*names));
            names[n++] = xasprintf("%s/%s", dir, e->d_name);
        }
    }
    (void)closedir(d); /* read-only */
    if (n > 1) {
        qsort(names, n, sizeof(*names), conf_name_cmp); /* names is NULL when n == 0 */
    }
    for (size_t i = 0; i < n; i++) {
        struct stat st;

        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            conf_parse_path(p, scope, names[i], from, readonly);
        }
        free(names[i]);
    }
    free(names);
}

static void
conf_include(struct conf_pfile *pf, struct conf_node *scope, const struct conf_tok *kw)
{
    bool readonly = strv_eq_cstr_ci(kw->text, "readonly_include") || pf->readonly;
    struct conf_tok t = conf_next(pf);
    struct conf_loc loc = conf_tok_loc(pf, &t);
    char *path;
    struct stat st;

    if (t.kind != CONF_TOK_STRING && t.kind != CONF_TOK_WORD) {
        conf_syntax_error(pf, &t, "a file or directory name after include");
        conf_skip_after_error(pf, &t);
        return;
    }
    if (t.text.len && t.text.ptr[0] == '/') {
        path = strv_dup(t.text);
    } else {
        path = xasprintf("%s/%.*s", pf->dir, STRV_FMT(t.text));
    }
    if (stat(path, &st) != 0) {
        conf_error(pf->p->diags, &loc, "cannot include %s: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        conf_include_dir(pf->p, scope, path, &loc, readonly);
    } else if (!S_ISREG(st.st_mode)) {
        /* a FIFO or terminal would block the load; a device is no configuration */
        conf_error(pf->p->diags, &loc, "cannot include %s: not a regular file or directory", path);
    } else {
        conf_parse_path(pf->p, scope, path, &loc, readonly);
    }
    free(path);
}

/* The item after its keyword word: option or scope. */
static void
conf_parse_item(struct conf_pfile *pf, struct conf_node *scope, const struct conf_tok *kw)
{
    struct conf_node *node = XNEW(struct conf_node);
    struct conf_tok t;

    node->loc = conf_tok_loc(pf, kw);
    node->keyword = strv_dup(kw->text);
    node->readonly = pf->readonly;
    t = conf_next(pf);
    if (t.kind == CONF_TOK_EQUALS) {
        node->kind = CONF_NODE_OPTION;
        node->value = conf_parse_value(pf, 0);
        if (node->value == NULL) {
            conf_node_free(node);
            return;
        }
        conf_node_add(scope, node);
        return;
    }
    node->kind = CONF_NODE_SCOPE;
    if (t.kind == CONF_TOK_STRING || t.kind == CONF_TOK_WORD) {
        node->name = strv_dup(t.text);
        node->name_loc = conf_tok_loc(pf, &t);
        t = conf_next(pf);
    }
    if (t.kind != CONF_TOK_LBRACE) {
        conf_syntax_error(pf, &t, node->name ? "'{' after the scope name" : "'=' or '{'");
        conf_node_free(node);
        conf_skip_after_error(pf, &t);
        return;
    }
    conf_node_add(scope, node);
    conf_parse_body(pf, node, &t);
}

/* Items until EOF (open == NULL) or the '}' matching open. */
static void
conf_parse_body(struct conf_pfile *pf, struct conf_node *scope, const struct conf_tok *open)
{
    struct conf_tok open_copy = open ? *open : (struct conf_tok){0};

    for (;;) {
        struct conf_tok t = conf_next(pf);

        switch (t.kind) {
        case CONF_TOK_EOF:
            if (open) {
                struct conf_loc loc = conf_tok_loc(pf, &open_copy);

                conf_error(pf->p->diags, &loc,
                           "'{' is never closed (missing '}' before end of file)");
            }
            conf_unget(pf, t);
            return;
        case CONF_TOK_RBRACE:
            if (open) {
                return;
            }
            conf_syntax_error(pf, &t, "an option or scope (unmatched '}')");
            continue;
        case CONF_TOK_SEMICOLON:
            continue;
        case CONF_TOK_WORD:
            if (strv_eq_cstr_ci(t.text, "include") || strv_eq_cstr_ci(t.text, "readonly_include")) {
                conf_include(pf, scope, &t);
            } else {
                conf_parse_item(pf, scope, &t);
            }
            continue;
        default:
            conf_syntax_error(pf, &t, "an option name or scope keyword");
            conf_recover(pf, &t);
            continue;
        }
    }
}

static void
conf_parse_buffer(struct conf_parser *p, struct conf_node *scope, const char *file, const char *dir,
                  struct strv text, bool readonly)
{
    struct conf_pfile pf = {.p = p, .file = file, .dir = dir, .readonly = readonly};

    conf_lex_init(&pf.lx, text);
    conf_parse_body(&pf, scope, NULL);
    conf_lex_release(&pf.lx);
}

static void
conf_parse_path(struct conf_parser *p, struct conf_node *scope, const char *path,
                const struct conf_loc *from, bool readonly)
{
    char real[PATH_MAX];
    struct buf text;
    const char *file;
    char *dir;
    int err;

    if (realpath(path, real) == NULL) {
        conf_error(p->diags, from, "cannot read %s: %s", path, strerror(errno));
        return;
    }
    for (size_t i = 0; i < p->depth; i++) {
        if (strcmp(p->stack[i], real) == 0) {
            conf_error(p->diags, from, "include cycle: %s includes itself (through %s)", path,
                       p->stack[p->depth - 1]);
            return;
        }
    }
    if (p->depth >= CONF_INCLUDE_DEPTH) {
        conf_error(p->diags, from, "includes nested deeper than %d files", CONF_INCLUDE_DEPTH);
        return;
    }
    buf_init(&text, CONF_FILE_MAX);
    err = conf_read_file(path, &text);
    if (err != 0) {
        conf_error(p->diags, from, "cannot read %s: %s", path, strerror(-err));
        buf_release(&text);
        return;
    }
    file = conf_ast_add_file(p->ast, path);
    dir = conf_dirname(path);
    p->stack[p->depth++] = real;
    conf_parse_buffer(p, scope, file, dir, buf_data(&text), readonly);
    p->depth--;
    free(dir);
    buf_release(&text);
}

static struct conf_ast *
conf_ast_new(void)
{
    struct conf_ast *ast = XNEW(struct conf_ast);

    ast->root = XNEW(struct conf_node);
    ast->root->kind = CONF_NODE_SCOPE;
    ast->root->keyword = xstrdup("global");
    return ast;
}

struct conf_ast *
conf_parse_file(const char *path, struct conf_diags *diags)
{
    struct conf_parser p = {.diags = diags};

    p.ast = conf_ast_new();
    conf_parse_path(&p, p.ast->root, path, NULL, false);
    return p.ast;
}

struct conf_ast *
conf_parse_text(const char *name, struct strv text, struct conf_diags *diags)
{
    struct conf_parser p = {.diags = diags};
    const char *file;

    p.ast = conf_ast_new();
    file = conf_ast_add_file(p.ast, name);
    conf_parse_buffer(&p, p.ast->root, file, ".", text, false);
    return p.ast;
}

static bool
conf_needs_quotes(const char *s)
{
    if (*s == '\0') {
        return true;
    }
    for (; *s; s++) {
        if (strchr(" \t\r\n\f\v#/\"'={}[]();", *s)) { /* the lexer's blanks and separators */
            return true;
        }
    }
    return false;
}

static void
conf_render_scalar(const char *s, bool quote, struct buf *out)
{
    size_t len = strlen(s);

    /*
     * A word (never quoted text: \" would escape the closing quote) ending
     * in a backslash can only be written bare; it came from the lexer as a
     * word, so it is one.
     */
    if (!quote && (!conf_needs_quotes(s) || (len > 0 && s[len - 1] == '\\'))) {
        buf_append_cstr(out, s);
        return;
    }
    buf_append(out, "\"", 1);
    for (; *s; s++) {
        if (*s == '"') {
            buf_append(out, "\\", 1);
        }
        buf_append(out, s, 1);
    }
    buf_append(out, "\"", 1);
}

void
conf_value_render(const struct conf_value *v, struct buf *out)
{
    switch (v->kind) {
    case CONF_VALUE_SCALAR:
        conf_render_scalar(v->text, v->quoted, out);
        return;
    case CONF_VALUE_ARRAY:
    case CONF_VALUE_DICT:
        buf_append_cstr(out, v->kind == CONF_VALUE_ARRAY ? "(" : "[");
        for (size_t i = 0; i < v->n; i++) {
            buf_append(out, " ", 1);
            if (v->kind == CONF_VALUE_DICT) {
                conf_render_scalar(v->keys[i], false, out);
                buf_append(out, " = ", 3);
            }
            conf_value_render(v->items[i], out);
        }
        buf_append_cstr(out, v->kind == CONF_VALUE_ARRAY ? " )" : " ]");
        return;
    }
}
