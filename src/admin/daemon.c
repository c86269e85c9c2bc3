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
#include <sys/stat.h>
#include <unistd.h>

#include "admin/security.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "log/log_writer.h"
#include "net/loop.h"

struct daemon {
    const struct daemon_opts *opts;
    struct conf *conf; /* ref: the running configuration */
    struct security_plan security;
    struct log_writer *logw;
    struct log_file *paniclog; /* borrowed from logw; NULL: stderr only */
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

static int
daemon_open_logs(struct daemon *d)
{
    const struct conf_scope *ecl = daemon_ec_logger(d->conf);
    const struct conf_setting *path, *mode;
    uid_t uid;
    gid_t gid;
    int err = 0;

    d->logw = log_writer_new(&err);
    if (d->logw == NULL) {
        fprintf(stderr, "celerd: cannot start the log writer: %s\n", err_str(err));
        return err;
    }
    if (ecl == NULL) {
        return 0;
    }
    path = conf_local_get(d->conf, ecl, "paniclog");
    mode = conf_local_get(d->conf, ecl, "paniclog_mode");
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
    d->paniclog = log_writer_open(d->logw, path->val.s, (mode_t)mode->val.i, uid, gid, &err);
    if (d->paniclog == NULL) {
        fprintf(stderr, "celerd: cannot open paniclog %s: %s\n", path->val.s, err_str(err));
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

static int
daemon_prepare_spool(struct daemon *d)
{
    const char *spool = conf_global(d->conf, "spoolbase")->val.s;
    uid_t uid;
    gid_t gid;
    int err;

    security_file_owner(&d->security, &uid, &gid);
    err = daemon_mkdirs(spool, 0750, uid, gid);
    if (err == 0 && access(spool, W_OK | X_OK) != 0) {
        err = -errno;
    }
    if (err != 0) {
        log_crit("spool_unusable path=%s error=\"%s\"", spool, err_str(err));
    }
    return err;
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
    int err;

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
        conf_unref(d->conf);
        d->conf = neu;
        log_notice("config_reloaded path=%s warnings=%u", d->opts->config_path, diags.warnings);
    }
    conf_diags_release(&diags);
    err = log_writer_reopen(d->logw);
    if (err != 0) {
        log_error("log_reopen_failed error=\"%s\"", err_str(err));
    }
}

static void
daemon_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;

    if (sig == SIGHUP) {
        log_notice("signal name=SIGHUP action=reload");
        daemon_reload(d);
        return;
    }
    log_notice("signal name=%s action=shutdown", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopexit(d->admin, NULL);
}

static int
daemon_start_loops(struct daemon *d)
{
    int err = 0;

    d->nloops = daemon_loop_count(d->conf);
    d->loops = loop_group_new(d->nloops, &err);
    if (d->loops == NULL) {
        log_crit("loops_failed count=%u error=\"%s\"", d->nloops, err_str(err));
        return err;
    }
    err = loop_group_start(d->loops);
    if (err != 0) {
        log_crit("loops_failed count=%u error=\"%s\"", d->nloops, err_str(err));
    }
    return err;
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

static void
daemon_teardown(struct daemon *d)
{
    if (d->loops) {
        loop_group_stop(d->loops, NULL, NULL);
        loop_group_free(d->loops);
    }
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
    if ((err = daemon_prepare_spool(d)) != 0 || (err = daemon_write_pidfile(d)) != 0 ||
        (err = daemon_setup_signals(d)) != 0) {
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
    return daemon_start_loops(d);
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
