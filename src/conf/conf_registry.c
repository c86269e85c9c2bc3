/*
 * conf_registry: scope kinds, module kinds and option lookups (see
 * conf_registry.h). The option rows themselves are in conf_options.c.
 */
#include "conf/conf_registry.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/strv.h"

/* clang-format off */
const struct conf_scope_def conf_scope_defs[] = {
    {"global", CONF_SCOPE_GLOBAL, CONF_NAME_NONE, 0, true, "global"},
    {"ESMTP_Listener", CONF_SCOPE_ESMTP_LISTENER, CONF_NAME_NONE, S_G, true, "esmtp_listener"},
    {"Control_Listener", CONF_SCOPE_CONTROL_LISTENER, CONF_NAME_NONE, S_G, true, "control_listener"},
    {"HTTP_Listener", CONF_SCOPE_HTTP_LISTENER, CONF_NAME_NONE, S_G, true, "http_listener"},
    {"ECStream_Listener", CONF_SCOPE_ECSTREAM_LISTENER, CONF_NAME_NONE, S_G, false, "ecstream_listener"},
    {"XMPP_Listener", CONF_SCOPE_XMPP_LISTENER, CONF_NAME_NONE, S_G, false, "xmpp_listener"},
    {"ECCluster_Listener", CONF_SCOPE_ECCLUSTER_LISTENER, CONF_NAME_NONE, S_G, false, "eccluster_listener"},
    {"msgcserver_listener", CONF_SCOPE_MSGCSERVER_LISTENER, CONF_NAME_NONE, S_G, false, "msgcserver_listener"},
    {"Listen", CONF_SCOPE_LISTEN, CONF_NAME_REQUIRED, S_LISTENERS, true, "listen"},
    {"Peer", CONF_SCOPE_PEER, CONF_NAME_REQUIRED, S_LISTENERS | S_LSN, true, "peer"},
    {"Pathway", CONF_SCOPE_PATHWAY, CONF_NAME_REQUIRED, S_G | S_PWG, true, "pathway"},
    {"Pathway_Group", CONF_SCOPE_PATHWAY_GROUP, CONF_NAME_REQUIRED, S_G, true, "pathway_group"},
    {"Binding", CONF_SCOPE_BINDING, CONF_NAME_REQUIRED, S_G | S_BG, true, "binding"},
    {"Binding_Group", CONF_SCOPE_BINDING_GROUP, CONF_NAME_REQUIRED, S_G, true, "binding_group"},
    {"Domain", CONF_SCOPE_DOMAIN, CONF_NAME_REQUIRED, S_G | S_BG | S_B, true, "domain"},
    {"Host", CONF_SCOPE_HOST, CONF_NAME_REQUIRED, S_G | S_BG | S_B, true, "host"},
    {"Security", CONF_SCOPE_SECURITY, CONF_NAME_NONE, S_G, true, "security"},
    {"EventLoop", CONF_SCOPE_EVENTLOOP, CONF_NAME_REQUIRED, S_G, true, "eventloop"},
    {"ThreadPool", CONF_SCOPE_THREADPOOL, CONF_NAME_REQUIRED, S_G, true, "threadpool"},
    {"Authorization", CONF_SCOPE_AUTHORIZATION, CONF_NAME_NONE, S_G, false, "authorization"},
    {"Role", CONF_SCOPE_ROLE, CONF_NAME_REQUIRED, S_AUTHZ, false, "role"},
    {"Debug_Flags", CONF_SCOPE_DEBUG_FLAGS, CONF_NAME_NONE, S_G, false, "debug_flags"},
    {"SNMP", CONF_SCOPE_SNMP, CONF_NAME_NONE, S_G, false, "snmp"},
    {"SNMP_Traps", CONF_SCOPE_SNMP_TRAPS, CONF_NAME_NONE, S_G, false, "snmp_traps"},
    {"cluster", CONF_SCOPE_CLUSTER, CONF_NAME_NONE, S_G, false, "cluster"},
    {"Topology", CONF_SCOPE_TOPOLOGY, CONF_NAME_REQUIRED, S_CLUSTER, false, "topology"},
    {"Replicate", CONF_SCOPE_REPLICATE, CONF_NAME_REQUIRED, S_CLUSTER, false, "replicate"},
    {"Logs", CONF_SCOPE_LOGS, CONF_NAME_NONE, S_G | S_CLUSTER, false, "logs"},
    {"Manager", CONF_SCOPE_MANAGER, CONF_NAME_OPTIONAL, S_LOGS, false, "manager"},
    {"adaptive_sweep_rule", CONF_SCOPE_ADAPTIVE_SWEEP_RULE, CONF_NAME_REQUIRED, S_G | S_BG | S_B | S_D, false, "adaptive_sweep_rule"},
    {"adaptive_backstore_leveldb", CONF_SCOPE_ADAPTIVE_BACKSTORE_LEVELDB, CONF_NAME_OPTIONAL, S_G, false, "adaptive_backstore_leveldb"},
    {"adaptive_backstore_riak", CONF_SCOPE_ADAPTIVE_BACKSTORE_RIAK, CONF_NAME_OPTIONAL, S_G, false, "adaptive_backstore_riak"},
    {"module", CONF_SCOPE_MODULE, CONF_NAME_OPTIONAL, S_G, true, "module"},
};
/* clang-format on */
const size_t conf_scope_defs_count = sizeof(conf_scope_defs) / sizeof(conf_scope_defs[0]);

/*
 * Momentum modules that may appear as instance scopes. Only the implemented
 * ones have their options checked; the rest load with a warning.
 */
const struct conf_module_def conf_module_defs[] = {
    {"ac_auth", false, true},
    {"adaptive", false, true},
    {"alerting", false, true},
    {"alias", false, false},
    {"antivirus", false, false},
    {"as_logger", false, false},
    {"auth_ds", false, false},
    {"auth_radius", false, false},
    {"av_fsecure", false, false},
    {"beik", false, false},
    {"bind_address_secondary", false, true},
    {"bounce_classifier", false, false},
    {"bounce_classifier_override", false, true},
    {"bounce_logger", false, false},
    {"brightmail", false, false},
    {"chunk_logger", false, false},
    {"cidrdb", false, false},
    {"clamav", false, false},
    {"cloudmark", false, false},
    {"commtouch_ctasd", false, false},
    {"compress_spool", false, true},
    {"conntrol", false, true},
    {"csapi", false, false},
    {"custom_bounce_logger", false, false},
    {"custom_logger", false, false},
    {"datasource", false, false},
    {"delay_dsn", false, true},
    {"disclaimer", false, false},
    {"dk_sign", false, false},
    {"dk_validate", false, false},
    {"dkim_sign", false, false},
    {"dkim_validate", false, false},
    {"dnsbuf", false, true},
    {"ds_core", false, true},
    {"ds_ldap", false, false},
    {"ds_odbc", false, false},
    {"ds_pgsql", false, false},
    {"ds_sqlite", false, false},
    {"ec_logger", true, false},
    {"eleven", false, false},
    {"exim_logger", false, false},
    {"fbl", false, false},
    {"fingerprint", false, false},
    {"host_fingerprint", false, false},
    {"http_io", false, true},
    {"icu", false, true},
    {"ilf_logger", false, false},
    {"imageanalyzer", false, false},
    {"inbound_audit", false, true},
    {"ipv6_lookup", false, true},
    {"jlog", false, true},
    {"live_bounce_updates", false, true},
    {"mail_loop", false, true},
    {"maildir", false, false},
    {"msgc_client", false, false},
    {"msgc_server", false, false},
    {"mxip", false, true},
    {"opendkim", false, false},
    {"outbound_audit", false, true},
    {"outbound_smtp_auth", false, false},
    {"pe2_logger", false, false},
    {"persist_io", false, true},
    {"pipe_io", false, true},
    {"pipe_transport", false, false},
    {"postfix_logger", false, false},
    {"reception_timing", false, true},
    {"response_transcode", false, false},
    {"sched", false, true},
    {"scriptlet", false, false},
    {"securecreds", false, false},
    {"seedlist", false, false},
    {"senderid", false, false},
    {"sendmail_logger", false, false},
    {"sieve", false, false},
    {"sievelib", false, true},
    {"smtp_auth_proxy", false, false},
    {"smtp_cbv", false, false},
    {"smtp_rcptto_proxy", false, false},
    {"spf_macros", false, true},
    {"spf_v1", false, false},
    {"static_routes", false, false},
    {"stats_producer", false, false},
    {"suppress_spool", false, true},
    {"syslog_io", false, true},
    {"url_ripper", false, false},
};
const size_t conf_module_defs_count = sizeof(conf_module_defs) / sizeof(conf_module_defs[0]);

const struct conf_scope_def *
conf_scope_def_find(const char *keyword, size_t len)
{
    struct strv k = {keyword, len};

    for (size_t i = 0; i < conf_scope_defs_count; i++) {
        if (conf_scope_defs[i].type != CONF_SCOPE_MODULE &&
            conf_scope_defs[i].type != CONF_SCOPE_GLOBAL &&
            strv_eq_cstr_ci(k, conf_scope_defs[i].keyword)) {
            return &conf_scope_defs[i];
        }
    }
    return NULL;
}

const struct conf_scope_def *
conf_scope_def_get(enum conf_scope_type type)
{
    return &conf_scope_defs[type];
}

const struct conf_module_def *
conf_module_def_find(const char *keyword, size_t len)
{
    struct strv k = {keyword, len};

    for (size_t i = 0; i < conf_module_defs_count; i++) {
        if (strv_eq_cstr_ci(k, conf_module_defs[i].keyword)) {
            return &conf_module_defs[i];
        }
    }
    return NULL;
}

/* Index of the first row named name (case-insensitive), or conf_options_count. */
static size_t
conf_option_first(struct strv name)
{
    size_t lo = 0, hi = conf_options_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strv_cmp_ci(strv_from_cstr(conf_options[mid].name), name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < conf_options_count && strv_eq_cstr_ci(name, conf_options[lo].name)) {
        return lo;
    }
    return conf_options_count;
}

static bool
conf_option_fits(const struct conf_option *o, enum conf_scope_type type, const char *mod)
{
    if ((o->scopes & CONF_SCOPE_BIT(type)) == 0) {
        return false;
    }
    if (type != CONF_SCOPE_MODULE) {
        return true;
    }
    /* module scopes take their module's rows and the common ones (enabled, ...) */
    return o->module == NULL || (mod != NULL && strcasecmp(o->module, mod) == 0);
}

const struct conf_option *
conf_option_lookup(const char *name, size_t len, enum conf_scope_type type, const char *mod,
                   bool *valid_here)
{
    struct strv n = {name, len};
    size_t i = conf_option_first(n);
    const struct conf_option *any = NULL;

    for (; i < conf_options_count && strv_eq_cstr_ci(n, conf_options[i].name); i++) {
        if (conf_option_fits(&conf_options[i], type, mod)) {
            *valid_here = true;
            return &conf_options[i];
        }
        if (any == NULL) {
            any = &conf_options[i];
        }
    }
    *valid_here = false;
    return any;
}

const struct conf_option *
conf_option_by_name(const char *name)
{
    size_t i = conf_option_first(strv_from_cstr(name));

    for (; i < conf_options_count && strcasecmp(conf_options[i].name, name) == 0; i++) {
        if (conf_options[i].module == NULL) {
            return &conf_options[i];
        }
    }
    return NULL;
}

size_t
conf_option_index(const struct conf_option *opt)
{
    return (size_t)(opt - conf_options);
}

/* Levenshtein distance, case-insensitive, capped at 255. */
static unsigned
conf_distance(struct strv a, const char *bs)
{
    struct strv b = strv_from_cstr(bs);
    unsigned row[64];

    if (a.len >= 63 || b.len >= 63) {
        return 255;
    }
    for (size_t j = 0; j <= b.len; j++) {
        row[j] = (unsigned)j;
    }
    for (size_t i = 1; i <= a.len; i++) {
        unsigned diag = row[0];

        row[0] = (unsigned)i;
        for (size_t j = 1; j <= b.len; j++) {
            unsigned up = row[j];
            unsigned cost = strv_lower_char(a.ptr[i - 1]) != strv_lower_char(b.ptr[j - 1]);
            unsigned best = diag + cost;

            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[b.len];
}

/*
 * A candidate whose length differs from the word's by more than limit is at
 * least that far away, so it can never be suggested: skip the O(n*m)
 * distance (this search runs for every unknown word of a file).
 */
static void
conf_consider(struct strv word, const char *cand, unsigned limit, const char **best,
              unsigned *best_d)
{
    size_t clen = strlen(cand);
    unsigned d;

    if ((clen > word.len ? clen - word.len : word.len - clen) > limit) {
        return;
    }
    d = conf_distance(word, cand);

    if (d < *best_d) {
        *best_d = d;
        *best = cand;
    }
}

const char *
conf_suggest(const char *word, size_t len)
{
    struct strv w = {word, len};
    const char *best = NULL;
    unsigned best_d = 255, limit = len < 6 ? 1 : (len < 12 ? 2 : 3);

    for (size_t i = 0; i < conf_options_count; i++) {
        conf_consider(w, conf_options[i].name, limit, &best, &best_d);
    }
    for (size_t i = 1; i < conf_scope_defs_count; i++) {
        conf_consider(w, conf_scope_defs[i].keyword, limit, &best, &best_d);
    }
    for (size_t i = 0; i < conf_module_defs_count; i++) {
        conf_consider(w, conf_module_defs[i].keyword, limit, &best, &best_d);
    }
    return best_d <= limit ? best : NULL;
}

char *
conf_scope_mask_str(uint64_t mask, char *dst, size_t size)
{
    size_t o = 0;

    dst[0] = '\0';
    for (size_t i = 0; i < conf_scope_defs_count && o < size; i++) {
        if (mask & CONF_SCOPE_BIT(conf_scope_defs[i].type)) {
            int n = snprintf(dst + o, size - o, "%s%s", o ? ", " : "", conf_scope_defs[i].label);

            if (n < 0) {
                break;
            }
            o += (size_t)n;
        }
    }
    return dst;
}
