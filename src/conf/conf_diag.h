/*
 * conf_diag: the errors and warnings a configuration load produces.
 *
 * Each diagnostic carries its own copy of "file:line:column" so it outlives
 * the files and trees of a failed load. Loading collects every problem it
 * can find in one run (up to CONF_DIAG_MAX), then the caller prints them.
 */
#ifndef CELER_CONF_DIAG_H
#define CELER_CONF_DIAG_H

#include <stdio.h>

#define CONF_DIAG_MAX 200

enum conf_diag_level {
    CONF_DIAG_WARNING,
    CONF_DIAG_ERROR,
};

/* A position in a configuration file; file is borrowed from the file table. */
struct conf_loc {
    const char *file;
    unsigned line;
    unsigned col;
};

struct conf_diag {
    enum conf_diag_level level;
    char *where; /* owned: "file:line:col" */
    char *msg;   /* owned */
};

struct conf_diags {
    struct conf_diag *items; /* owned */
    size_t n;
    size_t cap;
    unsigned errors;
    unsigned warnings;
};

void conf_diags_init(struct conf_diags *d);
void conf_diags_release(struct conf_diags *d);
void conf_diag_add(struct conf_diags *d, enum conf_diag_level level, const struct conf_loc *loc,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define conf_error(d, loc, ...)   conf_diag_add((d), CONF_DIAG_ERROR, (loc), __VA_ARGS__)
#define conf_warning(d, loc, ...) conf_diag_add((d), CONF_DIAG_WARNING, (loc), __VA_ARGS__)
/* Prints "file:line:col: error: message" lines, then nothing else. */
void conf_diags_print(const struct conf_diags *d, FILE *f);

#endif
