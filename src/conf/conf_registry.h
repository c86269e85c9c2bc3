/*
 * conf_registry: what celer's configuration language knows.
 *
 * Two static tables: the scope kinds (Binding, Domain, ESMTP_Listener, ...,
 * with where each may appear and whether it takes an instance name) and the
 * option registry: one row per option with its name, value type, default,
 * the scopes it is valid in, flags (dynamic, implemented or not, celer-only)
 * and a one-line description. The option table includes every option of
 * Momentum 3 (../shared/spec/momentum-options.tsv): the ones celer does not
 * implement yet are flagged so the loader can warn about them by name.
 * Module instances (ec_logger "x" { }) are a scope kind of their own; their
 * options are rows whose `module` field names the module. Adding an option is
 * adding one row.
 *
 * The tables are constant and need no initialisation; lookups are by
 * case-insensitive name.
 */
#ifndef CELER_CONF_REGISTRY_H
#define CELER_CONF_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_scope_type {
    CONF_SCOPE_GLOBAL = 0,
    CONF_SCOPE_ESMTP_LISTENER,
    CONF_SCOPE_CONTROL_LISTENER,
    CONF_SCOPE_HTTP_LISTENER,
    CONF_SCOPE_ECSTREAM_LISTENER,
    CONF_SCOPE_XMPP_LISTENER,
    CONF_SCOPE_ECCLUSTER_LISTENER,
    CONF_SCOPE_MSGCSERVER_LISTENER,
    CONF_SCOPE_LISTEN,
    CONF_SCOPE_PEER,
    CONF_SCOPE_PATHWAY,
    CONF_SCOPE_PATHWAY_GROUP,
    CONF_SCOPE_BINDING,
    CONF_SCOPE_BINDING_GROUP,
    CONF_SCOPE_DOMAIN,
    CONF_SCOPE_HOST,
    CONF_SCOPE_SECURITY,
    CONF_SCOPE_EVENTLOOP,
    CONF_SCOPE_THREADPOOL,
    CONF_SCOPE_AUTHORIZATION,
    CONF_SCOPE_ROLE,
    CONF_SCOPE_DEBUG_FLAGS,
    CONF_SCOPE_SNMP,
    CONF_SCOPE_SNMP_TRAPS,
    CONF_SCOPE_CLUSTER,
    CONF_SCOPE_TOPOLOGY,
    CONF_SCOPE_REPLICATE,
    CONF_SCOPE_LOGS,
    CONF_SCOPE_MANAGER,
    CONF_SCOPE_ADAPTIVE_SWEEP_RULE,
    CONF_SCOPE_ADAPTIVE_BACKSTORE_LEVELDB,
    CONF_SCOPE_ADAPTIVE_BACKSTORE_RIAK,
    CONF_SCOPE_MODULE, /* a module instance: ec_logger "name" { } */
    CONF_SCOPE_COUNT,
};

#define CONF_SCOPE_BIT(t) (UINT64_C(1) << (t))

/* Scope masks used by the tables. */
#define S_G         CONF_SCOPE_BIT(CONF_SCOPE_GLOBAL)
#define S_ESMTP     CONF_SCOPE_BIT(CONF_SCOPE_ESMTP_LISTENER)
#define S_CTL       CONF_SCOPE_BIT(CONF_SCOPE_CONTROL_LISTENER)
#define S_HTTP      CONF_SCOPE_BIT(CONF_SCOPE_HTTP_LISTENER)
#define S_ECSTREAM  CONF_SCOPE_BIT(CONF_SCOPE_ECSTREAM_LISTENER)
#define S_XMPP      CONF_SCOPE_BIT(CONF_SCOPE_XMPP_LISTENER)
#define S_ECCLUSTER CONF_SCOPE_BIT(CONF_SCOPE_ECCLUSTER_LISTENER)
#define S_MSGC      CONF_SCOPE_BIT(CONF_SCOPE_MSGCSERVER_LISTENER)
#define S_LSN       CONF_SCOPE_BIT(CONF_SCOPE_LISTEN)
#define S_PEER      CONF_SCOPE_BIT(CONF_SCOPE_PEER)
#define S_PW        CONF_SCOPE_BIT(CONF_SCOPE_PATHWAY)
#define S_PWG       CONF_SCOPE_BIT(CONF_SCOPE_PATHWAY_GROUP)
#define S_B         CONF_SCOPE_BIT(CONF_SCOPE_BINDING)
#define S_BG        CONF_SCOPE_BIT(CONF_SCOPE_BINDING_GROUP)
#define S_D         CONF_SCOPE_BIT(CONF_SCOPE_DOMAIN)
#define S_H         CONF_SCOPE_BIT(CONF_SCOPE_HOST)
#define S_SEC       CONF_SCOPE_BIT(CONF_SCOPE_SECURITY)
#define S_EVLOOP    CONF_SCOPE_BIT(CONF_SCOPE_EVENTLOOP)
#define S_TPOOL     CONF_SCOPE_BIT(CONF_SCOPE_THREADPOOL)
#define S_AUTHZ     CONF_SCOPE_BIT(CONF_SCOPE_AUTHORIZATION)
#define S_ROLE      CONF_SCOPE_BIT(CONF_SCOPE_ROLE)
#define S_DEBUGF    CONF_SCOPE_BIT(CONF_SCOPE_DEBUG_FLAGS)
#define S_SNMP      CONF_SCOPE_BIT(CONF_SCOPE_SNMP)
#define S_SNMPTRAPS CONF_SCOPE_BIT(CONF_SCOPE_SNMP_TRAPS)
#define S_CLUSTER   CONF_SCOPE_BIT(CONF_SCOPE_CLUSTER)
#define S_TOPOLOGY  CONF_SCOPE_BIT(CONF_SCOPE_TOPOLOGY)
#define S_REPLICATE CONF_SCOPE_BIT(CONF_SCOPE_REPLICATE)
#define S_LOGS      CONF_SCOPE_BIT(CONF_SCOPE_LOGS)
#define S_MANAGER   CONF_SCOPE_BIT(CONF_SCOPE_MANAGER)
#define S_SWEEP     CONF_SCOPE_BIT(CONF_SCOPE_ADAPTIVE_SWEEP_RULE)
#define S_MOD       CONF_SCOPE_BIT(CONF_SCOPE_MODULE)
/* Every listener kind. */
#define S_LISTENERS (S_ESMTP | S_CTL | S_HTTP | S_ECSTREAM | S_XMPP | S_ECCLUSTER | S_MSGC)

enum conf_scope_naming {
    CONF_NAME_NONE,     /* ESMTP_Listener { } */
    CONF_NAME_REQUIRED, /* Binding "b1" { } */
    CONF_NAME_OPTIONAL, /* module instances: singleton modules have none */
};

struct conf_scope_def {
    const char *keyword; /* canonical spelling, as the manual writes it */
    enum conf_scope_type type;
    enum conf_scope_naming naming;
    uint64_t parents;  /* scope kinds it may appear in */
    bool implemented;  /* false: accepted with a warning, contents ignored */
    const char *label; /* lower-case name used in messages and dumps */
};

enum conf_type {
    CONF_T_ANY,      /* not interpreted (unimplemented Momentum options) */
    CONF_T_BOOL,     /* true/false on/off yes/no enabled/disabled 1/0 */
    CONF_T_INT,      /* decimal, 0-prefixed octal, 0x hex; may be negative */
    CONF_T_SIZE,     /* bytes, optional k/m/g suffix (binary multiples) */
    CONF_T_INTERVAL, /* seconds, optional s/m/h/d/w suffix */
    CONF_T_STRING,   /* one scalar */
    CONF_T_ENUM,     /* one of the option's values; "#" among them admits an integer */
    CONF_T_LIST,     /* array of scalars; a lone scalar is a list of one */
    CONF_T_DICT,     /* [ key = value ... ] */
    CONF_T_THROTTLE, /* "N" per second or "N/S" per S seconds */
    CONF_T_CIDRS,    /* list of a.b.c.d[/n] or IPv6[/n] */
};

enum conf_option_flags {
    CONF_OPT_DYNAMIC = 1u << 0, /* takes effect on reload without restart */
    CONF_OPT_UNIMPL = 1u << 1,  /* Momentum option celer does not implement yet */
    CONF_OPT_CELER = 1u << 2,   /* celer addition, not in Momentum */
};

struct conf_option {
    const char *name; /* canonical, lower case */
    enum conf_type type;
    const char *def; /* default as configuration text; NULL = unset */
    uint64_t scopes; /* scope kinds it is valid in */
    unsigned flags;
    const char *values; /* CONF_T_ENUM: "a|b|c"; NULL otherwise */
    const char *module; /* NULL for core options, else the module keyword */
    const char *desc;   /* one line */
};

/* All rows, sorted by (name, module). */
extern const struct conf_option conf_options[];
extern const size_t conf_options_count;

extern const struct conf_scope_def conf_scope_defs[];
extern const size_t conf_scope_defs_count;

struct conf_module_def {
    const char *keyword;
    bool implemented;
    bool singleton; /* takes no instance name */
};
extern const struct conf_module_def conf_module_defs[];
extern const size_t conf_module_defs_count;

/* The scope kind with this keyword (case-insensitive), or NULL. */
const struct conf_scope_def *conf_scope_def_find(const char *keyword, size_t len);
const struct conf_scope_def *conf_scope_def_get(enum conf_scope_type type);
const struct conf_module_def *conf_module_def_find(const char *keyword, size_t len);

/*
 * The row for option name valid in scope kind type (for module scopes, of
 * module mod). When no row is valid there, returns some row with that name
 * and sets *valid_here false; returns NULL when no row has the name at all.
 */
const struct conf_option *conf_option_lookup(const char *name, size_t len,
                                             enum conf_scope_type type, const char *mod,
                                             bool *valid_here);
/* A core option by exact lower-case name (for code that reads values). */
const struct conf_option *conf_option_by_name(const char *name);
size_t conf_option_index(const struct conf_option *opt);

/* The closest known option or scope keyword to word, or NULL if none is close. */
const char *conf_suggest(const char *word, size_t len);

/* "global, binding, domain" for a scope mask, into dst[size]. */
char *conf_scope_mask_str(uint64_t mask, char *dst, size_t size);

#endif
