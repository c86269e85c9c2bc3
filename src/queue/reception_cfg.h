/*
 * reception_cfg: the configuration of one inbound session, resolved once at
 * accept time from the listener's fallback chain (Peer -> Listen ->
 * listener -> pathway -> global), plus the caches it draws on (TLS contexts
 * and AUTH password files, shared by all loops under one mutex).
 *
 * A resolved configuration borrows strings from the snapshot it came from;
 * the session keeps a reference to that snapshot for its lifetime.
 */
#ifndef CELER_QUEUE_RECEPTION_CFG_H
#define CELER_QUEUE_RECEPTION_CFG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "smtp/smtp_authdb.h"
#include "smtp/smtp_server.h"

enum reception_hdr_policy {
    RECEPTION_HDR_IGNORE,   /* leave the message as it is */
    RECEPTION_HDR_PEDANTIC, /* refuse a message without the header */
    RECEPTION_HDR_IFNEEDED, /* add the header when missing */
};

struct reception_session_cfg {
    struct smtp_server_cfg smtp;
    const char *hostname;          /* borrowed or points into default_hostname */
    const char *received_hostname; /* "by" of Received */
    const char *pathway;           /* NULL: none */
    const char *pathway_group;
    bool relay_by_ip; /* the peer is in relay_hosts */
    bool open_relay;
    bool tls_verified_can_relay;
    const char *const *relay_domains; /* borrowed; NULL: none */
    size_t nrelay_domains;
    const struct conf_setting *inbound_throttle; /* borrowed key of the bucket; NULL: none */
    unsigned listener_sessions;                  /* 0: no limit */
    struct smtp_authdb *authdb;                  /* borrowed from the cache; NULL: no AUTH */
    enum reception_hdr_policy messageid_policy;
    enum reception_hdr_policy date_policy;
    bool trace_headers;
    bool log_receptions;
    bool log_rejections;
    char banner[512];
};

struct reception_cfg_cache;

struct reception_cfg_cache *reception_cfg_cache_new(void);
void reception_cfg_cache_free(struct reception_cfg_cache *cc);

/* Fills cfg for a connection from peer on the Listen named listen_name of listener kind. */
void reception_session_cfg_resolve(struct reception_session_cfg *cfg, const struct conf *c,
                                   struct reception_cfg_cache *cc, enum conf_scope_type kind,
                                   const char *listen_name, const struct sockaddr *peer,
                                   const char *default_hostname);
void reception_session_cfg_release(struct reception_session_cfg *cfg);

/* memory_hwm as bytes of resident memory (memory_hwm_rss, else memory_hwm percent of RAM); 0: none.
 */
uint64_t reception_memory_limit(const struct conf *c);
/* This process's resident set size. */
uint64_t reception_rss_bytes(void);

/* The Listen scope of listener kind named name in c (NULL if gone), and its listener. */
const struct conf_scope *reception_find_listen(const struct conf *c, enum conf_scope_type kind,
                                               const char *name,
                                               const struct conf_scope **listener);

#endif
