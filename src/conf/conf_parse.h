/*
 * conf_parse: parses configuration files into a syntax tree.
 *
 * Grammar (keywords case-insensitive):
 *   body    := { item | ';' }
 *   item    := ("include" | "readonly_include") path
 *            | WORD '=' value
 *            | WORD [name] '{' body '}'
 *   value   := STRING | WORD | '(' { value } ')' | '[' { key '=' value } ']'
 * An include is replaced by the items of the file, or of every regular file
 * of the directory (lexical order, dot-files skipped, no recursion), resolved
 * relative to the including file's directory. Include cycles and nesting
 * deeper than CONF_INCLUDE_DEPTH are errors. Items from readonly_include are
 * marked read-only. Syntax errors are reported with file:line:col and parsing
 * resumes at the next line, so one run reports many errors.
 *
 * The tree owns every string; locations borrow file names from the tree's
 * file table, so the tree must outlive anything that keeps a conf_loc.
 */
#ifndef CELER_CONF_PARSE_H
#define CELER_CONF_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf_diag.h"
#include "core/strv.h"

#define CONF_INCLUDE_DEPTH 16
#define CONF_VALUE_DEPTH   8

enum conf_value_kind {
    CONF_VALUE_SCALAR,
    CONF_VALUE_ARRAY,
    CONF_VALUE_DICT,
};

struct conf_value {
    enum conf_value_kind kind;
    struct conf_loc loc;
    char *text; /* owned; scalars */
    bool quoted;
    struct conf_value **items; /* owned; array elements or dictionary values */
    char **keys;               /* owned; dictionary keys */
    size_t n;
    size_t cap;
};

enum conf_node_kind {
    CONF_NODE_OPTION,
    CONF_NODE_SCOPE,
};

struct conf_node {
    enum conf_node_kind kind;
    struct conf_loc loc;      /* of the keyword */
    char *keyword;            /* owned, as written */
    char *name;               /* owned; scope instance name or NULL */
    struct conf_loc name_loc; /* of the name */
    struct conf_value *value; /* owned; options */
    struct conf_node **kids;  /* owned; scope body */
    size_t n;
    size_t cap;
    bool readonly; /* came through readonly_include */
};

struct conf_ast {
    struct conf_node *root; /* owned; the global scope */
    char **files;           /* owned; every file read, first = main file */
    size_t nfiles;
    size_t files_cap;
};

/*
 * Parses path and its includes. Always returns a tree (possibly partial);
 * problems go to diags.
 */
struct conf_ast *conf_parse_file(const char *path, struct conf_diags *diags);
/* Parses text as if it were the file `name` (no includes relative to a dir: cwd). */
struct conf_ast *conf_parse_text(const char *name, struct strv text, struct conf_diags *diags);
void conf_ast_free(struct conf_ast *ast);
void conf_value_free(struct conf_value *v);
/* Writes a value back in configuration syntax (for dumps). */
struct buf;
void conf_value_render(const struct conf_value *v, struct buf *out);

#endif
