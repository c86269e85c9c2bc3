/*
 * conf: loaded configuration snapshots and the lookups the daemon uses.
 *
 * conf_load() parses a file and its includes, checks every scope and option
 * against the registry (conf_registry.h), parses each value into its type and
 * builds an immutable snapshot. Any error rejects the whole file: the caller
 * gets NULL and every problem in diags (warnings too). A snapshot is
 * reference-counted and read-only, so event loops can share it and a reload
 * swaps in a new one while old ones drain.
 *
 * Values resolve by Momentum's fallback chains (docs/configuration.md):
 *   outbound (binding B, domain D):
 *     B::D, BG::D, B, BG, global::D, global, built-in default
 *     (B's group BG; a domain stanza matches exactly first, then by regex in
 *     declaration order)
 *   inbound (listener L, Listen N, peer address A):
 *     N::Peer(A), N, L::Peer(A), L, pathway P (chosen by the `pathway` option
 *     along that chain), P's pathway group, global, default
 *   host (binding B, MX host H): B::H, BG::H, global::H; an option no Host
 *     stanza sets is unset (unlimited), never inherited from other scopes.
 * A lookup returns the setting object itself, so every scope that inherits a
 * throttle gets the same object: consumers key token buckets by it, which
 * makes inherited throttles shared by reference, as in Momentum.
 */
#ifndef CELER_CONF_CONF_H
#define CELER_CONF_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf_diag.h"
#include "conf/conf_parse.h"
#include "conf/conf_registry.h"
#include "core/map.h"

struct conf_throttle {
    uint32_t count;   /* messages (or connections) ... */
    uint32_t seconds; /* ... per this many seconds */
};

struct conf_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

/* A typed value. Strings borrow from the snapshot's syntax tree. */
struct conf_val {
    enum conf_type type;
    bool b;                  /* BOOL; ENUM: true when the value is the integer "#" admits */
    int64_t i;               /* INT, SIZE, INTERVAL; ENUM: index among the values, or the integer */
    const char *s;           /* STRING, ENUM (as written), ANY scalar */
    const char **list;       /* owned array of borrowed strings; LIST */
    size_t n;                /* LIST or CIDRS length */
    struct conf_cidr *cidrs; /* owned; CIDRS */
    struct conf_throttle thr;     /* THROTTLE */
    const struct conf_value *raw; /* borrowed: the value as written */
};

struct conf_scope;

struct conf_setting {
    const struct conf_option *opt;
    struct conf_val val;
    struct conf_loc loc;            /* where set; file NULL for defaults */
    const struct conf_scope *scope; /* where set; NULL for defaults */
};

struct conf_scope {
    enum conf_scope_type type;
    const struct conf_scope_def *def;
    char *name;                /* owned; instance name or NULL */
    char *module;              /* owned; module keyword for module instances */
    struct conf_scope *parent; /* borrowed */
    struct conf_loc loc;
    struct map settings;      /* option name -> owned struct conf_setting */
    struct conf_scope **kids; /* owned, in declaration order */
    size_t nkids;
    size_t kids_cap;
    bool implicit;            /* the implicit default binding or binding group */
    bool ignored;             /* unimplemented scope or module: contents not checked */
    void *regex;              /* owned pcre2_code for "/regex/" domains and hosts */
    struct conf_cidr cidr;    /* Peer scopes */
    struct conf_scope *group; /* borrowed: a binding's group, a pathway's group */
};

struct conf {
    atomic_int refs;
    char *path;                      /* owned: the main file */
    struct conf_ast *ast;            /* owned: keeps raw values and file names alive */
    struct conf_scope *root;         /* owned: the global scope */
    struct conf_setting *defaults;   /* owned: one per registry row */
    struct conf_value **default_raw; /* owned: the defaults as values, one per row */
    struct map bindings;             /* name -> borrowed binding scope */
    struct map binding_groups;
    struct map pathways;
};

#define CONF_CHAIN_MAX 12

/* Scopes to search for a value, most specific first; global is last. */
struct conf_chain {
    const struct conf_scope *s[CONF_CHAIN_MAX];
    unsigned n;
};

/* Loads a configuration. NULL if it has any error (all problems in diags). */
struct conf *conf_load(const char *path, struct conf_diags *diags);
/* Same, from text (tests). */
struct conf *conf_load_text(const char *name, const char *text, struct conf_diags *diags);
struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/* Chains. binding NULL means "default"; domain may be NULL (no domain level). */
void conf_chain_outbound(const struct conf *c, const char *binding, const char *domain,
                         struct conf_chain *out);
/* listen may be NULL; peer may be NULL (no Peer level). */
void conf_chain_inbound(const struct conf *c, const struct conf_scope *listener,
                        const struct conf_scope *listen, const struct sockaddr *peer,
                        struct conf_chain *out);
/* The chain of a scope as it stands in the tree (for dumps and `config eval`). */
void conf_chain_of_scope(const struct conf *c, const struct conf_scope *s, struct conf_chain *out);

/* The effective setting of opt along chain (never NULL: falls back to the default row). */
const struct conf_setting *conf_chain_get(const struct conf *c, const struct conf_chain *ch,
                                          const struct conf_option *opt);
/* By core option name; aborts on a name not in the registry (a programming error). */
const struct conf_setting *conf_chain_get_name(const struct conf *c, const struct conf_chain *ch,
                                               const char *name);
/* Global value (global scope, then default). */
const struct conf_setting *conf_global(const struct conf *c, const char *name);
/* A value set exactly in scope s, or NULL (Momentum's `config get`). */
const struct conf_setting *conf_scope_get(const struct conf_scope *s, const char *name);
/*
 * An option of a scope that does not inherit (module instances, Security,
 * EventLoop): set in the scope, else the default of the row valid there.
 * Aborts on a name not valid in that scope (a programming error).
 */
const struct conf_setting *conf_local_get(const struct conf *c, const struct conf_scope *s,
                                          const char *name);
/* Host-scope option (see the contract above); NULL when unset. */
const struct conf_setting *conf_host_get(const struct conf *c, const char *binding,
                                         const char *host, const char *name);

/* True when the setting is unset (no value anywhere, no default). */
bool conf_setting_unset(const struct conf_setting *s);

/* Scope lookups. */
const struct conf_scope *conf_binding(const struct conf *c, const char *name);
const struct conf_scope *conf_binding_group(const struct conf *c, const char *name);
const struct conf_scope *conf_pathway(const struct conf *c, const char *name);
/* The first child of s of this type (and module keyword, for modules), or NULL. */
const struct conf_scope *conf_child(const struct conf_scope *s, enum conf_scope_type type,
                                    const char *module);
/* Iterates children of a type: for (i = 0; (k = conf_child_next(s, type, mod, &i));) */
const struct conf_scope *conf_child_next(const struct conf_scope *s, enum conf_scope_type type,
                                         const char *module, size_t *it);
/* Matches a domain name against the Domain stanzas directly inside s. */
const struct conf_scope *conf_match_domain(const struct conf_scope *s, const char *domain);

/* Value helpers. */
bool conf_cidr_match(const struct conf_cidr *cidr, const struct sockaddr *sa);
int conf_cidr_parse(const char *text, struct conf_cidr *out) CELER_WUR;
/*
 * Parses a Listen name: "addr:port", "[ipv6]:port", "*:port" or ":port" (any
 * IPv4 address), or a Unix socket path: one that starts with '/' or
 * contains '/' and no ':' ("var/run/ctl").
 */
int conf_listen_parse(const char *name, struct sockaddr_storage *ss, socklen_t *len) CELER_WUR;
/* Renders a setting's value in configuration syntax. */
void conf_setting_render(const struct conf_setting *s, struct buf *out);
/* "binding_group \"g\" binding \"b\"": the path of a scope, for messages. */
void conf_scope_path(const struct conf_scope *s, struct buf *out);

/* Writes the effective configuration (after includes and fallback) into out. */
void conf_dump(const struct conf *c, struct buf *out);

#endif
