/*
 * queue_int: the delivery engine's internal types, shared by its modules:
 * queue.c (loops, intake, recovery, statistics), dqueue.c (domain queues and
 * their maintainer), route.c (domain records: DNS, Routes, Gateway, address
 * selection), delivery.c (outbound connections and outcomes), qcfg.c (the
 * resolved configuration of a queue) and bounce.c. Not for other layers.
 */
#ifndef CELER_QUEUE_QUEUE_INT_H
#define CELER_QUEUE_QUEUE_INT_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/heap.h"
#include "core/list.h"
#include "core/map.h"
#include "net/dns.h"
#include "queue/outconv.h"
#include "queue/qmsg.h"
#include "queue/queue.h"
#include "smtp/smtp_client.h"

struct dqueue;
struct domrec;

/* ---- the resolved configuration of one (binding, domain) queue ---- */

enum qcfg_retries { QCFG_RETRIES_AUTO, QCFG_RETRIES_NONE, QCFG_RETRIES_COUNT };
enum qcfg_blackhole { QCFG_BLACKHOLE_NO, QCFG_BLACKHOLE_YES, QCFG_BLACKHOLE_INTERNAL };

struct qcfg {
    unsigned gen;            /* configuration generation this was resolved from */
    int64_t max_conns;       /* -1: unlimited */
    unsigned max_deliveries; /* per connection, 0: no limit */
    unsigned max_rcpts_batch;
    unsigned max_rcpts_conn; /* 0: no limit */
    double aggressiveness;
    unsigned idle_ms;
    int64_t retry_interval;
    int64_t max_retry_interval;
    enum qcfg_retries retries;
    unsigned max_retries;
    int64_t expiration;
    bool never_retry;
    bool never_attempt_expired;
    bool suspended;
    enum qcfg_blackhole blackhole;
    bool generate_bounces;
    unsigned mx_failures_to_delay;
    int64_t connect_timeout_to_delay;
    int64_t host_failure_retry;
    struct smtp_client_cfg client;    /* timeouts, TLS, EHLO name, LMTP */
    enum outconv_mode transform_8bit; /* transform_8bitmime_content */
    SSL_CTX *tls_ctx;                 /* ref, or NULL */
    bool tls_fallback;                /* tls_ifavailable_fallback */
    bool fully_resolve;               /* fully_resolve_before_smtp */
    struct sockaddr_storage bind;     /* bind_address, family 0 = none */
    socklen_t bind_len;
    uint16_t port;                        /* remote_smtp_port or lmtp_port */
    const struct conf_setting *scope_max; /* scope_max_outbound_connections, or NULL */
    char *route_key;                      /* owned: which domain record this queue uses */
    char *ehlo_name;                      /* owned */
    char *mailerdaemon;                   /* owned */
};

/* ---- domain records: where a domain's mail goes ---- */

struct route_target {
    uint16_t pref;
    uint16_t port;
    char *host;                 /* owned; the MX (or route) host name, "" for a literal */
    struct sockaddr_storage sa; /* address with port */
    socklen_t salen;
    char ip[64];
};

/* An exchange (or route host) whose addresses are being looked up. */
struct route_mx {
    uint16_t pref;
    uint16_t port;
    char *host; /* owned */
};

/* One DNS lookup of a domain record in flight. */
struct route_lookup {
    struct domrec *dr;
    size_t mx_index; /* which exchange (for A/AAAA), or SIZE_MAX for the MX query */
    struct dns_query *q;
};

enum domrec_state {
    DOMREC_NEW,
    DOMREC_RESOLVING,
    DOMREC_READY,
    DOMREC_TEMPFAIL,
    DOMREC_PERMFAIL,
};

struct domrec {
    char *key;    /* owned: the domain, or "routes:..." for configured routes */
    char *domain; /* owned: the name looked up (MX) */
    struct qloop *ql;
    enum domrec_state state;
    uint64_t expires_ms;           /* monotonic; re-resolve after this */
    unsigned dns_failures;         /* consecutive temporary DNS failures */
    unsigned pending;              /* lookups in flight */
    struct route_lookup **lookups; /* owned: in-flight lookups (for cancel) */
    size_t nlookups;
    size_t lookups_cap;
    uint16_t port;      /* port for exchanges found in DNS */
    bool fully;         /* fully_resolve_before_smtp: wait for every exchange's addresses */
    bool best_only;     /* only the lowest preference (relay domains, see route.c) */
    uint16_t best_pref; /* lowest MX preference of the answer */
    struct route_target *targets; /* owned, ordered by preference */
    size_t ntargets;
    size_t targets_cap;
    struct route_mx *mx; /* owned: exchanges being resolved */
    size_t nmx;
    uint32_t ttl;
    unsigned rr;   /* round-robin start among equal preferences */
    char why[256]; /* the last failure, for T/P records */
    int why_code;  /* SMTP-like code for the failure (451, 550, 556) */
    char why_enh[12];
    struct list_node waiters; /* dqueues waiting for this record */
    unsigned refs;            /* dqueues using it */
    bool mx_fallback_a;       /* resolving the domain's A after MX lookups failed */
};

/* ---- one loop's share of the engine ---- */

struct qloop {
    struct queue *q;
    struct loop *loop;
    struct conf *conf;  /* ref: this loop's configuration */
    unsigned gen;       /* bumped when conf changes */
    struct map dqueues; /* "binding\0domain" -> struct dqueue */
    struct map domrecs; /* key -> struct domrec */
    struct map
        failing; /* "ip:port" -> uint64 (ms until which not to connect), stored as pointer value */
    struct dns *dns;
    bool stopping;
    uint64_t nactive;
    uint64_t ndelayed;
    uint64_t nconns;
};

struct queue {
    struct queue_opts o;
    struct qloop *loops;
    unsigned nloops;
    char *hostname;
    atomic_uint_fast64_t messages;
    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t failed;
    atomic_uint_fast64_t transient;
    atomic_int server_conns; /* all outbound connections */
    pthread_mutex_t lock;    /* guards the maps below */
    struct map host_conns;   /* MX host -> count (int in a pointer) */
    struct map scope_conns;  /* scope_max setting pointer -> count */
    struct map tls_ctxs;     /* client TLS option tuple -> SSL_CTX */
    struct spool_idgen connids;
};

/* ---- queue entries: one message's recipients of one domain ---- */

struct qentry {
    struct qmsg *m; /* ref */
    struct dqueue *dq;
    struct list_node node; /* on dq->active, or the connection's in-flight slot */
    struct heap_node hn;   /* on dq->delayed */
    uint32_t attempts;
    int64_t next_attempt_s; /* wall clock */
    bool busy;              /* in flight or writing progress */
    uint32_t nr;
    uint32_t r[]; /* recipient indexes into m->rcpts */
};

/* ---- domain queues ---- */

struct dqueue {
    struct qloop *ql;
    char *binding; /* owned */
    char *domain;  /* owned */
    struct qcfg cfg;
    struct domrec *dr; /* counted reference */
    struct list_node active;
    size_t nactive;
    struct heap delayed;
    struct list_node conns;     /* struct oconn */
    unsigned nconns;            /* including connecting */
    struct event *maint;        /* owned */
    struct list_node wait_node; /* on dr->waiters */
    uint64_t nentries;          /* entries that belong here, wherever they are now */
    uint64_t idle_since_ms;     /* empty since; 0 while it has work */
    unsigned consecutive_failures;
    uint64_t failing_since_ms; /* 0: not failing */
    uint64_t delivered;
    uint64_t failed;
    uint64_t transient;
};

/* ---- outbound connections ---- */

struct oconn {
    struct dqueue *dq;
    struct smtp_client *cl;
    struct list_node node;      /* on dq->conns */
    struct route_target target; /* copy (host owned) */
    char connid[SPOOL_ID_SIZE];
    struct qentry *cur; /* in flight */
    int fd;             /* spool file of cur, -1 */
    struct buf conv;    /* owned: cur downconverted to 7 bit (outconv.h), or empty */
    struct smtp_client_msg msg;
    struct smtp_client_rcpt *rcpts; /* owned, for cur */
    unsigned deliveries;
    unsigned rcpts_sent;
    bool ready;
    bool no_tls;           /* a reconnect without TLS after a failed handshake */
    char *verify_names[2]; /* owned: the MX host and the domain, for TLS_Verify = host */
    bool counted_host;
    const struct conf_setting *scope_key;
    uint64_t opened_ms;
};

/* queue.c */
struct qloop *queue_loop_of(struct queue *q, const char *domain);
struct qloop *queue_this_loop(struct queue *q, struct loop *lp);
void queue_log_delivery(struct dqueue *dq, const struct qentry *e, uint32_t ri, char type,
                        const char *remote_ip, const char *connid, enum smtp_stage stage, int code,
                        const char *enh, const char *text);

/* qcfg.c */
void qcfg_resolve(struct qcfg *cfg, struct qloop *ql, const char *binding, const char *domain);
void qcfg_release(struct qcfg *cfg);

/* dqueue.c */
struct dqueue *dqueue_get(struct qloop *ql, const char *binding, const char *domain);
void dqueue_free(struct dqueue *dq);
void dqueue_add(struct dqueue *dq, struct qentry *e);
void dqueue_delay(struct dqueue *dq, struct qentry *e);
void dqueue_kick(struct dqueue *dq);
struct qentry *dqueue_take(struct dqueue *dq);
/* A transient failure of every active entry (auto-delay, DNS failure). */
void dqueue_sweep_transient(struct dqueue *dq, int code, const char *enh, const char *text,
                            enum smtp_stage stage);
/* quiet: no bounce (Blackhole = internal). */
void dqueue_fail_all(struct dqueue *dq, int code, const char *enh, const char *text, bool quiet);
void dqueue_refresh_cfg(struct dqueue *dq);
struct qentry *qentry_new(struct qmsg *m, const uint32_t *r, uint32_t nr);
void qentry_free(struct qentry *e);

/* route.c */
struct domrec *domrec_get(struct qloop *ql, const struct qcfg *cfg, const char *domain);
void domrec_put(struct domrec *dr);
/* Starts resolving if needed; true when targets are ready. */
bool domrec_ready(struct domrec *dr, struct dqueue *dq);
void domrec_free(struct domrec *dr);
bool route_ip_failing(struct qloop *ql, const struct route_target *t, uint64_t now,
                      uint64_t *until);
void route_mark_failing(struct qloop *ql, const struct route_target *t, uint64_t until);

/* delivery.c */
/* Opens connections as the queue needs; returns when nothing more can be opened now. */
void delivery_fill(struct dqueue *dq);
void oconn_abort(struct oconn *oc);
/* Outcomes of entries that were never sent (DNS failures, expiry, admin). */
void delivery_fail_entry(struct dqueue *dq, struct qentry *e, int code, const char *enh,
                         const char *text, enum smtp_stage stage, bool quiet);
void delivery_transient_entry(struct dqueue *dq, struct qentry *e, int code, const char *enh,
                              const char *text, enum smtp_stage stage);
/* The entry's message may have been recorded and finished: drop the entry. */
void delivery_entry_done(struct qentry *e);

/* bounce.c */
/* Writes and queues a simple bounce for the failed recipients of m. */
void bounce_generate(struct qloop *ql, const struct qmsg *m, const uint32_t *failed,
                     const char *const *reasons, uint32_t n, const char *mailerdaemon);

#endif
