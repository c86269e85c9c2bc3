/*
 * daemon: celerd's life cycle (see daemon.h).
 */
#include "admin/daemon.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/listeners.h"
#include "admin/security.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "log/log_writer.h"
#include "log/mainlog.h"
#include "net/loop.h"
#include "net/pool.h"
#include "queue/queue.h"
#include "queue/reception.h"
#include "spool/spool_file.h"

#define DAEMON_IO_THREADS 16

struct daemon {
    const struct daemon_opts *opts;
    struct conf *conf; /* ref: the running configuration */
    struct security_plan security;
    struct log_writer *logw;
    struct log_file *paniclog;  /* borrowed from logw; NULL: stderr only */
    struct log_file *mainlog;   /* borrowed from logw; NULL: none */
    struct log_file *rejectlog; /* borrowed from logw; NULL: none */
    struct pool *io;
    struct spool *spool;
    struct reception *reception;
    struct queue *queue;
    struct listeners *listeners;
    struct event *tick;
    int64_t last_heartbeat;
    struct loop_group *loops;
    struct event_base *admin;
    struct event *sig_hup;
    struct event *sig_term;
    struct event *sig_int;
    char *pidfile; /* owned; set once written */
    unsigned nloops;
};

/* The paniclog sink, with a copy on stderr in the foreground. */
static void
daemon_log_sink(enum log_level level, const char *line, size_t len, void *arg)
{
    struct daemon *d = arg;

    if (d->paniclog) {
        log_paniclog_sink(level, line, len, d->paniclog);
    }
    if (d->opts->foreground || d->paniclog == NULL) {
        log_sink_stderr(level, line, len, NULL);
    }
}

static int daemon_mkdirs(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Creates the directory that will hold path (log files, the pidfile). */
static int
daemon_mkparent(const char *path, uid_t uid, gid_t gid)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int err;

    if (slash == NULL || slash == path) {
        return 0;
    }
    dir = xstrndup(path, (size_t)(slash - path));
    err = daemon_mkdirs(dir, 0755, uid, gid);
    free(dir);
    return err;
}

static const struct conf_scope *
daemon_ec_logger(const struct conf *c)
{
    return conf_child(c->root, CONF_SCOPE_MODULE, "ec_logger");
}

/* Opens one ec_logger file option (e.g. "paniclog" with "paniclog_mode"); NULL when unset. */
static int
daemon_open_log(struct daemon *d, const struct conf_scope *ecl, const char *opt,
                const char *mode_opt, struct log_file **out)
{
    const struct conf_setting *path = conf_local_get(d->conf, ecl, opt);
    const struct conf_setting *mode = conf_local_get(d->conf, ecl, mode_opt);
    uid_t uid;
    gid_t gid;
    int err;

    *out = NULL;
    if (path->val.s == NULL) {
        return 0;
    }
    security_file_owner(&d->security, &uid, &gid);
    err = daemon_mkparent(path->val.s, uid, gid);
    if (err != 0) {
        fprintf(stderr, "celerd: cannot create the directory of %s: %s\n", path->val.s,
                err_str(err));
        return err;
    }
    *out = log_writer_open(d->logw, path->val.s, (mode_t)mode->val.i, uid, gid, &err);
    if (*out == NULL) {
        fprintf(stderr, "celerd: cannot open %s %s: %s\n", opt, path->val.s, err_str(err));
        return err;
    }
    return 0;
}

static int
daemon_open_logs(struct daemon *d)
{
    const struct conf_scope *ecl = daemon_ec_logger(d->conf);
    int err = 0;

    d->logw = log_writer_new(&err);
    if (d->logw == NULL) {
        fprintf(stderr, "celerd: cannot start the log writer: %s\n", err_str(err));
        return err;
    }
    if (ecl == NULL) {
        return 0;
    }
    if ((err = daemon_open_log(d, ecl, "paniclog", "paniclog_mode", &d->paniclog)) != 0 ||
        (err = daemon_open_log(d, ecl, "mainlog", "mainlog_mode", &d->mainlog)) != 0 ||
        (err = daemon_open_log(d, ecl, "rejectlog", "rejectlog_mode", &d->rejectlog)) != 0) {
        return err;
    }
    return 0;
}

/* mkdir -p path, giving new directories to uid:gid. */
static int
daemon_mkdirs(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    char *p = xstrdup(path);
    int err = 0;

    for (char *s = p + 1;; s++) {
        char c = *s;

        if (c != '/' && c != '\0') {
            continue;
        }
        *s = '\0';
        if (mkdir(p, mode) == 0) {
            if (uid != (uid_t)-1 && chown(p, uid, gid) != 0) {
                err = -errno;
                break;
            }
        } else if (errno != EEXIST) {
            err = -errno;
            break;
        }
        *s = c;
        if (c == '\0') {
            break;
        }
    }
    free(p);
    return err;
}

/* ThreadPool "IO" { Concurrency = N } sizes the pool that runs fsyncs and spool scans. */
static unsigned
daemon_io_threads(const struct conf *c)
{
    const struct conf_scope *tp;
    size_t it = 0;

    while ((tp = conf_child_next(c->root, CONF_SCOPE_THREADPOOL, NULL, &it))) {
        const struct conf_setting *st = conf_scope_get(tp, "concurrency");

        if (strcasecmp(tp->name, "IO") == 0 && st && st->val.i > 0) {
            return (unsigned)st->val.i;
        }
    }
    return DAEMON_IO_THREADS;
}

static int
daemon_open_spool(struct daemon *d)
{
    struct spool_opts o = {
        .base = conf_global(d->conf, "spoolbase")->val.s,
        .mode = (mode_t)conf_global(d->conf, "spool_mode")->val.i,
        .force_fsync = conf_global(d->conf, "force_fsync")->val.b,
    };
    int err = 0;

    d->io = pool_new("io", daemon_io_threads(d->conf), &err);
    if (d->io == NULL) {
        log_crit("pool_failed name=io error=\"%s\"", err_str(err));
        return err;
    }
    o.io = d->io;
    security_file_owner(&d->security, &o.uid, &o.gid);
    d->spool = spool_open(&o, &err);
    if (d->spool == NULL) {
        log_crit("spool_unusable path=%s error=\"%s\"", o.base, err_str(err));
        return err;
    }
    log_notice("spool_open path=%s force_fsync=%s", o.base, o.force_fsync ? "true" : "false");
    return 0;
}

/* Writes the pidfile; refuses to start over a live daemon's pidfile. */
static int
daemon_write_pidfile(struct daemon *d)
{
    const char *path = conf_global(d->conf, "pidfile")->val.s;
    char text[32];
    FILE *f;
    int fd, n;
    long old;

    (void)daemon_mkparent(path, (uid_t)-1, (gid_t)-1); /* open() below reports failures */
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &old) == 1 && old > 0 && old != getpid() &&
            (kill((pid_t)old, 0) == 0 || errno == EPERM)) {
            fclose(f);
            log_crit("already_running pidfile=%s pid=%ld", path, old);
            return -EEXIST;
        }
        fclose(f);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = -errno;

        log_crit("pidfile_failed path=%s error=\"%s\"", path, err_str(err));
        return err;
    }
    n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (write(fd, text, (size_t)n) != n) {
        int err = -errno;

        (void)close(fd); /* already failing */
        log_crit("pidfile_failed path=%s error=\"%s\"", path, err_str(err));
        return err;
    }
    (void)close(fd); /* a short text file; a close error changes nothing */
    d->pidfile = xstrdup(path);
    return 0;
}

static unsigned
daemon_loop_count(const struct conf *c)
{
    const struct conf_scope *ev = conf_child(c->root, CONF_SCOPE_EVENTLOOP, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (ev) {
        const struct conf_setting *st = conf_scope_get(ev, "concurrency");

        if (st && st->val.i > 0) {
            return (unsigned)st->val.i;
        }
    }
    return cpus > 0 ? (unsigned)cpus : 1;
}

/* Options that only take effect at start-up: say so when a reload changes them. */
static void
daemon_note_static_changes(const struct conf *old, const struct conf *neu)
{
    static const char *const statics[] = {"spoolbase", "pidfile", "spool_mode"};

    for (size_t i = 0; i < sizeof(statics) / sizeof(statics[0]); i++) {
        struct buf a, b;

        buf_init(&a, 65536);
        buf_init(&b, 65536);
        conf_setting_render(conf_global(old, statics[i]), &a);
        conf_setting_render(conf_global(neu, statics[i]), &b);
        if (!strv_eq(buf_data(&a), buf_data(&b))) {
            log_warning("config_needs_restart option=%s running=%.*s configured=%.*s", statics[i],
                        STRV_FMT(buf_data(&a)), STRV_FMT(buf_data(&b)));
        }
        buf_release(&a);
        buf_release(&b);
    }
    if (daemon_loop_count(old) != daemon_loop_count(neu)) {
        log_warning("config_needs_restart option=eventloop.concurrency");
    }
}

static void
daemon_reload(struct daemon *d)
{
    struct conf_diags diags;
    struct conf *neu;

    conf_diags_init(&diags);
    neu = conf_load(d->opts->config_path, &diags);
    for (size_t i = 0; i < diags.n; i++) {
        const struct conf_diag *g = &diags.items[i];

        log_at(g->level == CONF_DIAG_ERROR ? LOG_LEVEL_ERROR : LOG_LEVEL_WARNING,
               "config_%s %s: %s", g->level == CONF_DIAG_ERROR ? "error" : "warning", g->where,
               g->msg);
    }
    if (neu == NULL) {
        log_error("config_reload_rejected path=%s errors=%u: keeping the running configuration",
                  d->opts->config_path, diags.errors);
    } else {
        daemon_note_static_changes(d->conf, neu);
        listeners_check_reload(d->listeners, neu);
        reception_set_conf(d->reception, neu);
        queue_set_conf(d->queue, neu);
        conf_unref(d->conf);
        d->conf = neu;
        log_notice("config_reloaded path=%s warnings=%u", d->opts->config_path, diags.warnings);
    }
    conf_diags_release(&diags);
}

static void
daemon_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;

    if (sig == SIGHUP) {
        int err;

        log_notice("signal name=SIGHUP action=reload");
        /* rotation first: what came before the signal stays in the old files */
        err = log_writer_reopen(d->logw);
        if (err != 0) {
            log_error("log_reopen_failed error=\"%s\"", err_str(err));
        }
        daemon_reload(d);
        return;
    }
    log_notice("signal name=%s action=shutdown", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopexit(d->admin, NULL);
}

static int
daemon_create_loops(struct daemon *d)
{
    int err = 0;

    d->nloops = daemon_loop_count(d->conf);
    d->loops = loop_group_new(d->nloops, &err);
    if (d->loops == NULL) {
        log_crit("loops_failed count=%u error=\"%s\"", d->nloops, err_str(err));
    }
    return err;
}

/* Messages found in the spool at start-up (runs on a pool thread). */
static void
daemon_recovered(const struct spool_msg *m, struct spool_id id, void *arg)
{
    struct daemon *d = arg;

    queue_recovered(d->queue, m, id);
}

static void
daemon_recovery_done(const struct spool_recover_stats *st, void *arg)
{
    log_notice("spool_recovered complete=%llu incomplete_removed=%llu corrupt_quarantined=%llu "
               "errors=%llu",
               (unsigned long long)st->complete, (unsigned long long)st->incomplete,
               (unsigned long long)st->corrupt, (unsigned long long)st->errors);
}

static int
daemon_start_services(struct daemon *d)
{
    struct reception_opts ro = {
        .spool = d->spool,
        .mainlog = d->mainlog,
        .rejectlog = d->rejectlog,
        .loops = d->loops,
        .sink = queue_submit,
    };
    struct queue_opts qo = {
        .spool = d->spool,
        .loops = d->loops,
        .mainlog = d->mainlog,
    };
    const struct conf_setting *host = conf_global(d->conf, "hostname");
    char hostname[256] = "localhost";
    struct buf why;
    int err = 0;

    if (!conf_setting_unset(host)) {
        snprintf(hostname, sizeof(hostname), "%s", host->val.s);
    } else if (gethostname(hostname, sizeof(hostname) - 1) != 0) {
        snprintf(hostname, sizeof(hostname), "localhost");
    }
    qo.hostname = hostname;
    buf_init(&why, 4096);
    d->queue = queue_new(&qo, d->conf, &why);
    if (d->queue == NULL) {
        log_crit("queue_failed reason=\"%.*s\"", STRV_FMT(buf_data(&why)));
        buf_release(&why);
        return -EINVAL;
    }
    buf_release(&why);
    ro.sink_arg = d->queue;
    d->reception = reception_new(&ro, d->conf);
    d->listeners = listeners_bind(d->conf, d->nloops, d->reception, &err);
    return d->listeners ? 0 : err;
}

static void
daemon_on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    const struct conf_scope *ecl = daemon_ec_logger(d->conf);
    int64_t now = clock_wall_s();
    int64_t every = ecl ? conf_local_get(d->conf, ecl, "heartbeat")->val.i : 60;

    reception_tick(d->reception, d->conf);
    if (every > 0 && now - d->last_heartbeat >= every) {
        struct buf line;

        d->last_heartbeat = now;
        buf_init(&line, 256);
        if (d->mainlog) {
            mainlog_format_heartbeat(&line, now);
            log_file_write(d->mainlog, buf_data(&line).ptr, buf_len(&line));
        }
        if (d->rejectlog) {
            buf_reset(&line);
            rejectlog_format_heartbeat(&line, now);
            log_file_write(d->rejectlog, buf_data(&line).ptr, buf_len(&line));
        }
        buf_release(&line);
    }
}

static int
daemon_run_loops(struct daemon *d)
{
    struct timeval second = {1, 0};
    int err = loop_group_start(d->loops);

    if (err != 0) {
        log_crit("loops_failed count=%u error=\"%s\"", d->nloops, err_str(err));
        return err;
    }
    listeners_start(d->listeners, d->loops);
    spool_recover(d->spool, loop_group_get(d->loops, 0), daemon_recovered, daemon_recovery_done, d);
    d->last_heartbeat = clock_wall_s();
    d->tick = event_new(d->admin, -1, EV_PERSIST, daemon_on_tick, d);
    if (d->tick == NULL || event_add(d->tick, &second) != 0) {
        return -ENOMEM;
    }
    return 0;
}

static int
daemon_setup_signals(struct daemon *d)
{
    d->admin = event_base_new();
    if (d->admin == NULL) {
        return -ENOMEM;
    }
    d->sig_hup = evsignal_new(d->admin, SIGHUP, daemon_on_signal, d);
    d->sig_term = evsignal_new(d->admin, SIGTERM, daemon_on_signal, d);
    d->sig_int = evsignal_new(d->admin, SIGINT, daemon_on_signal, d);
    if (d->sig_hup == NULL || d->sig_term == NULL || d->sig_int == NULL ||
        evsignal_add(d->sig_hup, NULL) != 0 || evsignal_add(d->sig_term, NULL) != 0 ||
        evsignal_add(d->sig_int, NULL) != 0) {
        return -ENOMEM;
    }
    (void)signal(SIGPIPE, SIG_IGN); /* write errors are handled where they happen */
    return 0;
}

/* On each loop as it stops: no more accepting, end the sessions. */
static void
daemon_stop_loop(struct loop *lp, void *arg)
{
    struct daemon *d = arg;

    if (d->listeners) {
        listeners_stop_loop(d->listeners, lp);
    }
    if (d->reception) {
        reception_stop_loop(d->reception, lp);
    }
    if (d->queue) {
        queue_stop_loop(d->queue, lp);
    }
}

static void
daemon_teardown(struct daemon *d)
{
    if (d->tick) {
        event_free(d->tick);
    }
    if (d->loops) {
        loop_group_stop(d->loops, daemon_stop_loop, d);
    }
    pool_free(d->io); /* finishes queued spool work; completions wait in the loops' mailboxes */
    if (d->loops) {
        loop_group_free(d->loops); /* runs those completions */
    }
    listeners_free(d->listeners);
    reception_free(d->reception);
    queue_free(d->queue);
    spool_close(d->spool);
    if (d->sig_hup) {
        event_free(d->sig_hup);
    }
    if (d->sig_term) {
        event_free(d->sig_term);
    }
    if (d->sig_int) {
        event_free(d->sig_int);
    }
    if (d->admin) {
        event_base_free(d->admin);
    }
    if (d->pidfile) {
        (void)unlink(d->pidfile); /* gone already is fine */
        free(d->pidfile);
    }
    log_notice("stopped pid=%ld", (long)getpid());
    log_set_sink(NULL, NULL);
    log_writer_free(d->logw);
    security_plan_release(&d->security);
    conf_unref(d->conf);
}

static int
daemon_startup(struct daemon *d)
{
    struct buf why;
    int err;

    buf_init(&why, 4096);
    err = security_plan_make(d->conf, &d->security, &why);
    if (err != 0) {
        fprintf(stderr, "celerd: %.*s\n", STRV_FMT(buf_data(&why)));
        buf_release(&why);
        return err;
    }
    if ((err = daemon_open_logs(d)) != 0) {
        buf_release(&why);
        return err;
    }
    log_set_sink(daemon_log_sink, d);
    if (!d->opts->foreground && daemon(1, 0) != 0) {
        err = -errno;
        log_crit("daemonize_failed error=\"%s\"", err_str(err));
        buf_release(&why);
        return err;
    }
    log_notice("starting version=%s pid=%ld config=%s", CELER_VERSION, (long)getpid(),
               d->opts->config_path);
    if ((err = daemon_write_pidfile(d)) != 0 || (err = daemon_setup_signals(d)) != 0 ||
        (err = daemon_create_loops(d)) != 0 || (err = daemon_open_spool(d)) != 0 ||
        (err = daemon_start_services(d)) != 0) {
        buf_release(&why);
        return err;
    }
    if ((err = security_apply(&d->security, &why)) != 0) {
        log_crit("privilege_drop_failed reason=\"%.*s\"", STRV_FMT(buf_data(&why)));
        buf_release(&why);
        return err;
    }
    buf_release(&why);
    if (d->security.change) {
        log_notice("privileges_dropped user=%s uid=%ld gid=%ld chroot=%s", d->security.user,
                   (long)d->security.uid, (long)d->security.gid,
                   d->security.chroot ? d->security.chroot : "none");
    }
    return daemon_run_loops(d);
}

int
daemon_main(const struct daemon_opts *opts)
{
    struct daemon d = {.opts = opts};
    struct conf_diags diags;
    int err;

    conf_diags_init(&diags);
    d.conf = conf_load(opts->config_path, &diags);
    conf_diags_print(&diags, stderr);
    conf_diags_release(&diags);
    if (d.conf == NULL) {
        fprintf(stderr, "celerd: %s has errors; not starting\n", opts->config_path);
        return 1;
    }
    err = daemon_startup(&d);
    if (err == 0) {
        log_notice("started pid=%ld loops=%u", (long)getpid(), d.nloops);
        event_base_dispatch(d.admin);
        log_notice("stopping pid=%ld", (long)getpid());
    }
    daemon_teardown(&d);
    return err == 0 ? 0 : 1;
}
