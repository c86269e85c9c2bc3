/*
 * test_smtp_client: the outbound SMTP/LMTP session against real peers.
 *
 * Postfix's smtp-sink (one child per test, its behaviour chosen by flags)
 * accepts, refuses, delays and hangs up on cue; aiosmtpd
 * (smtp_client_peer.py, one child for the whole run with several servers)
 * answers recipients by local part, offers DSN, SMTPUTF8, SIZE, STARTTLS
 * and LMTP, and records what it received, so the tests compare the exact
 * bytes and parameters that arrived. Certificates come from the openssl
 * command, made for the run in a temporary directory.
 *
 * The client runs on a real loop of a loop group; the test drives that
 * loop's event base on the main thread (cmocka asserts only there), until
 * the session reports closed() or a deadline passes. Children are stopped
 * by PID in the teardowns.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <dirent.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "core/buf.h"
#include "core/mem.h"
#include "net/loop.h"
#include "net/tls.h"
#include "smtp/smtp_client.h"

#define MAX_RCPTS 8
#define MAX_MSGS  8
#define MAX_KIDS  8

static struct loop_group *grp;
static struct event_base *base;
static char tmpdir[256];
static pid_t kids[MAX_KIDS];
static pid_t peer_pid;

/* aiosmtpd servers of smtp_client_peer.py */
enum peer_server { PEER_PLAIN, PEER_NODSN, PEER_SMALL, PEER_TLS, PEER_TLS13, PEER_LMTP, PEER_N };
static const char *const peer_names[PEER_N] = {"plain", "nodsn", "small", "tls", "tls13", "lmtp"};
static const char *const peer_opts[PEER_N] = {
    "pipelining,dsn,utf8", "", "small", "tls", "tls,tls13", "lmtp,pipelining,dsn",
};
static int peer_ports[PEER_N];

/* ---- helpers: time, files, children ---- */

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The whole file at path, NUL-terminated (malloc'd), or NULL. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[4096];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    buf_init(&b, BUF_UNLIMITED);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(&b, chunk, n);
    }
    fclose(f);
    if (len) {
        *len = buf_len(&b);
    }
    buf_append(&b, "", 0);
    return buf_steal_cstr(&b);
}

static int
free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* True once something listens on 127.0.0.1:port (read from /proc, no probe connection). */
static bool
listening(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    bool found = false;

    if (f == NULL) {
        return false;
    }
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned addr, lport, state;

        if (sscanf(line, " %*d: %8X:%X %*X:%*X %X", &addr, &lport, &state) == 3 &&
            (int)lport == port && state == 0x0A) {
            found = true;
        }
    }
    fclose(f);
    return found;
}

static void
wait_listening(int port)
{
    uint64_t end = now_ms() + 10000;

    while (!listening(port) && now_ms() < end) {
        sleep_ms(20);
    }
    assert_true(listening(port));
}

/* Starts argv with stdout and stderr to out_path. */
static pid_t
spawn(char *const argv[], const char *out_path)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void
argv_free(char **argv)
{
    for (size_t i = 0; argv[i]; i++) {
        free(argv[i]);
    }
}

static void
stop_child(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static void
kid_add(pid_t pid)
{
    for (size_t i = 0; i < MAX_KIDS; i++) {
        if (kids[i] == 0) {
            kids[i] = pid;
            return;
        }
    }
    fail_msg("too many children");
}

static void
kids_stop(void)
{
    for (size_t i = 0; i < MAX_KIDS; i++) {
        stop_child(kids[i]);
        kids[i] = 0;
    }
}

/* An smtp-sink on a free port with the given options (NULL-terminated); its output file. */
static int
sink_start(char *out_path, size_t out_size, ...)
{
    char *argv[32];
    char addr[64];
    size_t n = 0;
    int port = free_port();
    va_list ap;
    const char *opt;

    argv[n++] = xstrdup("/usr/sbin/smtp-sink");
    if (geteuid() == 0) {
        argv[n++] = xstrdup("-u");
        argv[n++] = xstrdup("nobody");
    }
    argv[n++] = xstrdup("-c");
    va_start(ap, out_size);
    while ((opt = va_arg(ap, const char *)) != NULL && n < 28) {
        argv[n++] = xstrdup(opt);
    }
    va_end(ap);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    argv[n++] = xstrdup(addr);
    argv[n++] = xstrdup("64");
    argv[n] = NULL;
    snprintf(out_path, out_size, "%s/sink-%d.out", tmpdir, port);
    kid_add(spawn(argv, out_path));
    argv_free(argv);
    wait_listening(port);
    return port;
}

/* Waits until smtp-sink's counters show want (e.g. "sess=1 quit=1 mesg=3"). */
static bool
sink_counters(const char *out_path, const char *want)
{
    uint64_t end = now_ms() + 3000;

    for (;;) {
        char *s = slurp(out_path, NULL);
        bool ok = s && strstr(s, want);

        free(s);
        if (ok || now_ms() > end) {
            return ok;
        }
        sleep_ms(20);
    }
}

static struct sockaddr_in
loopback(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* Records of an aiosmtpd server: how many messages it has accepted so far. */
static unsigned
peer_count(enum peer_server s)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char prefix[32];
    unsigned n = 0;

    assert_non_null(d);
    snprintf(prefix, sizeof(prefix), "%s-", peer_names[s]);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && len > 4 &&
            strcmp(e->d_name + len - 4, ".txt") == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The facts (.txt) or bytes (.eml) of message seq of a server (malloc'd). */
static char *
peer_record(enum peer_server s, unsigned seq, const char *ext, size_t *len)
{
    char path[512];
    char *data;

    snprintf(path, sizeof(path), "%s/%s-%u.%s", tmpdir, peer_names[s], seq, ext);
    data = slurp(path, len);
    assert_non_null(data);
    return data;
}

/* ---- messages ---- */

struct tmsg {
    struct smtp_client_msg m;
    struct smtp_client_rcpt rcpts[MAX_RCPTS];
    char *addrs[MAX_RCPTS]; /* owned */
};

/*
 * A message whose bytes are prepend then body, stored in a file between
 * other bytes (so the offsets matter). The file is unlinked at once.
 */
static void
tmsg_init(struct tmsg *t, const char *sender, const char *rcpts, const char *prepend,
          const char *body, size_t body_len)
{
    char path[300];
    char *list = strdup(rcpts);
    char *save = NULL;
    int fd;
    size_t plen = strlen(prepend);

    memset(t, 0, sizeof(*t));
    snprintf(path, sizeof(path), "%s/msg-XXXXXX", tmpdir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "garbage", 7), 7);
    assert_int_equal(write(fd, prepend, plen), (ssize_t)plen);
    assert_int_equal(write(fd, "junk!", 5), 5);
    assert_int_equal(write(fd, body, body_len), (ssize_t)body_len);
    assert_int_equal(write(fd, "trailer", 7), 7);
    t->m.sender = sender;
    t->m.fd = fd;
    t->m.prepend_off = 7;
    t->m.prepend_len = plen;
    t->m.body_off = 7 + plen + 5;
    t->m.body_len = body_len;
    t->m.size = plen + body_len;
    for (char *a = strtok_r(list, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
        assert_true(t->m.nrcpts < MAX_RCPTS);
        t->addrs[t->m.nrcpts] = xstrdup(a);
        t->rcpts[t->m.nrcpts].addr = t->addrs[t->m.nrcpts];
        t->m.nrcpts++;
    }
    free(list);
    t->m.rcpts = t->rcpts;
}

static void
tmsg_simple(struct tmsg *t, const char *sender, const char *rcpts)
{
    static const char body[] = "Subject: test\r\n\r\nHello.\r\n";

    tmsg_init(t, sender, rcpts, "", body, sizeof(body) - 1);
}

/* A message held in memory (mem[0, len), borrowed): no file at all. */
static void
tmsg_mem(struct tmsg *t, const char *sender, const char *rcpts, const char *mem, size_t len)
{
    tmsg_init(t, sender, rcpts, "", "", 0);
    close(t->m.fd);
    t->m.fd = -1;
    t->m.prepend_off = t->m.body_off = 1u << 30; /* would fail if read */
    t->m.mem = mem;
    t->m.mem_len = len;
    t->m.size = len;
}

static void
tmsg_free(struct tmsg *t)
{
    for (size_t i = 0; i < t->m.nrcpts; i++) {
        free(t->addrs[i]);
    }
    if (t->m.fd >= 0) {
        close(t->m.fd);
    }
}

/* ---- the session driver ---- */

struct outcome {
    struct smtp_client_reply msg;
    enum smtp_stage stage;
    struct smtp_client_reply rcpt[MAX_RCPTS];
    size_t nrcpts;
    bool conn_lost;
    uint64_t bytes_sent;
    bool idle_after;
};

struct job {
    struct tmsg *msgs[MAX_MSGS];
    size_t nmsgs;
    size_t next;  /* next message to send */
    bool no_quit; /* leave the session idle after the last message */
    bool abort_in_ready;
    bool ready;
    unsigned caps_ext;
    uint64_t size_max;
    bool tls_active;
    char tls_desc[200];
    size_t nresults;
    struct outcome out[MAX_MSGS];
    int send_rc;
    bool closed;
    enum smtp_stage closed_stage;
    struct smtp_client_reply why;
};

static void
job_next(struct smtp_client *c, struct job *j)
{
    if (j->next < j->nmsgs) {
        struct tmsg *t = j->msgs[j->next];
        int rc = smtp_client_send(c, &t->m, t);

        j->next++;
        if (rc != 0) {
            j->send_rc = rc;
            smtp_client_quit(c);
        }
        return;
    }
    if (!j->no_quit) {
        smtp_client_quit(c);
    }
}

static void
job_ready(struct smtp_client *c, void *arg)
{
    struct job *j = arg;
    struct buf d;

    j->ready = true;
    if (j->abort_in_ready) {
        smtp_client_abort(c);
        return;
    }
    j->caps_ext = smtp_client_caps(c)->ext;
    j->size_max = smtp_client_caps(c)->size_max;
    j->tls_active = smtp_client_tls_active(c);
    buf_init(&d, 1024);
    smtp_client_tls_describe(c, &d);
    snprintf(j->tls_desc, sizeof(j->tls_desc), "%.*s", STRV_FMT(buf_data(&d)));
    buf_release(&d);
    job_next(c, j);
}

static void
job_result(struct smtp_client *c, void *arg, void *msg_arg, const struct smtp_client_result *r)
{
    struct job *j = arg;
    struct outcome *o = &j->out[j->nresults++];

    assert_ptr_equal(msg_arg, j->msgs[j->nresults - 1]);
    o->msg = r->msg;
    o->stage = r->stage;
    o->nrcpts = r->nrcpts;
    for (size_t i = 0; i < r->nrcpts && i < MAX_RCPTS; i++) {
        o->rcpt[i] = r->rcpt[i];
    }
    o->conn_lost = r->conn_lost;
    o->bytes_sent = r->bytes_sent;
    o->idle_after = smtp_client_idle(c);
    if (o->idle_after) {
        job_next(c, j);
    }
}

static void
job_closed(struct smtp_client *c, void *arg, enum smtp_stage stage,
           const struct smtp_client_reply *why)
{
    struct job *j = arg;

    j->closed = true;
    j->closed_stage = stage;
    j->why = *why;
}

static const struct smtp_client_ops job_ops = {job_ready, job_result, job_closed};

static bool deadline_hit;

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
    deadline_hit = true;
}

/* Runs the loop until the job is closed (or aborted and quiet) or ms passed. */
static void
run_job(struct job *j, unsigned ms)
{
    struct event *ev = evtimer_new(base, on_deadline, NULL);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    deadline_hit = false;
    evtimer_add(ev, &tv);
    while (!deadline_hit && !j->closed) {
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(ev);
    /* let closed connections free themselves */
    for (int i = 0; i < 20; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
}

static struct smtp_client_cfg
cfg_default(void)
{
    struct smtp_client_cfg cfg = {
        .ehlo_name = "client.test",
        .connect_ms = 5000,
        .ehlo_ms = 5000,
        .mailfrom_ms = 5000,
        .rcptto_ms = 5000,
        .data_ms = 5000,
        .body_ms = 5000,
        .rset_ms = 5000,
        .starttls_ms = 5000,
        .idle_ms = 5000,
    };

    return cfg;
}

/* Connects to 127.0.0.1:port and runs the job to its end. */
static void
session(int port, const struct smtp_client_cfg *cfg, struct job *j, unsigned ms)
{
    struct sockaddr_in sa = loopback(port);
    int err = 0;
    struct smtp_client *c = smtp_client_connect(loop_group_get(grp, 0), (struct sockaddr *)&sa,
                                                sizeof(sa), NULL, 0, cfg, &job_ops, j, &err);

    assert_non_null(c);
    run_job(j, ms);
}

static void
assert_reply(const struct smtp_client_reply *r, int code, const char *enh, enum smtp_stage stage)
{
    if (r->code != code || strcmp(r->enh, enh) != 0 || r->stage != stage) {
        fail_msg("reply %d %s \"%s\" stage %d, want %d %s stage %d", r->code, r->enh, r->text,
                 (int)r->stage, code, enh, (int)stage);
    }
}

static void
assert_text_has(const struct smtp_client_reply *r, const char *part)
{
    if (strstr(r->text, part) == NULL) {
        fail_msg("reply text \"%s\" lacks \"%s\"", r->text, part);
    }
}

/* The session ended with QUIT answered by 221. */
static void
assert_quit_ok(const struct job *j)
{
    assert_true(j->closed);
    assert_int_equal(j->closed_stage, SMTP_STAGE_IDLE);
    assert_int_equal(j->why.code, 221);
}

/* ---- fixtures ---- */

static int
group_setup(void **state)
{
    char cmd[2048];
    char script[512], dirarg[300], cert[300], key[300], out[300];
    char specs[PEER_N][64];
    char *argv[10 + 2 * PEER_N];
    size_t n = 0;
    const char *src = getenv("CELER_SOURCE_DIR");
    int err = 0;

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/celer-smtp-client-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(cmd, sizeof(cmd),
             "(cd %s && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=celer-test-ca && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout wrongca.key -out wrongca.pem -days 2 -subj /CN=celer-wrong-ca && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout mx.key -out mx.csr -subj /CN=mx.test && "
             "printf 'subjectAltName=DNS:mx.test\\nbasicConstraints=CA:FALSE\\n' > mx.ext && "
             "openssl x509 -req -in mx.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out mx.pem -days 2 -extfile mx.ext) >%s/openssl.log 2>&1",
             tmpdir, tmpdir);
    assert_int_equal(system(cmd), 0);

    snprintf(script, sizeof(script), "%s/tests/unit/smtp_client_peer.py", src ? src : ".");
    snprintf(dirarg, sizeof(dirarg), "%s", tmpdir);
    snprintf(cert, sizeof(cert), "%s/mx.pem", tmpdir);
    snprintf(key, sizeof(key), "%s/mx.key", tmpdir);
    snprintf(out, sizeof(out), "%s/peer.out", tmpdir);
    argv[n++] = xstrdup("/usr/bin/python3");
    argv[n++] = xstrdup(script);
    argv[n++] = xstrdup("--dir");
    argv[n++] = xstrdup(dirarg);
    argv[n++] = xstrdup("--cert");
    argv[n++] = xstrdup(cert);
    argv[n++] = xstrdup("--key");
    argv[n++] = xstrdup(key);
    for (int i = 0; i < PEER_N; i++) {
        peer_ports[i] = free_port();
        snprintf(specs[i], sizeof(specs[i]), "%s:%d:%s", peer_names[i], peer_ports[i],
                 peer_opts[i]);
        argv[n++] = xstrdup("--server");
        argv[n++] = xstrdup(specs[i]);
    }
    argv[n] = NULL;
    peer_pid = spawn(argv, out);
    argv_free(argv);
    for (int i = 0; i < PEER_N; i++) {
        wait_listening(peer_ports[i]);
    }

    grp = loop_group_new(1, &err);
    assert_non_null(grp);
    base = loop_base(loop_group_get(grp, 0));
    *state = NULL;
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[400];

    stop_child(peer_pid);
    loop_group_free(grp);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return 0;
}

static int
test_teardown(void **state)
{
    kids_stop();
    return 0;
}

static SSL_CTX *
client_ctx(const char *ca_file, const char *protocols)
{
    char ca[300];
    struct tls_client_opts o = {0};
    struct buf why;
    SSL_CTX *ctx;

    snprintf(ca, sizeof(ca), "%s/%s", tmpdir, ca_file);
    o.ca = ca;
    o.protocols = protocols;
    buf_init(&why, 4096);
    ctx = tls_client_ctx_new(&o, &why);
    if (ctx == NULL) {
        fail_msg("client ctx: %.*s", STRV_FMT(buf_data(&why)));
    }
    buf_release(&why);
    return ctx;
}

/* ---- smtp-sink ---- */

/* Three messages over one pipelined session, one with the null sender. */
static void
test_sink_several_messages(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[3];
    struct job j = {0};

    tmsg_simple(&t[0], "a@client.test", "x@sink.test y@sink.test");
    tmsg_simple(&t[1], "", "z@sink.test");
    tmsg_simple(&t[2], "b@client.test", "x@sink.test");
    for (int i = 0; i < 3; i++) {
        j.msgs[j.nmsgs++] = &t[i];
    }
    session(port, &cfg, &j, 5000);
    assert_true(j.ready);
    assert_true(j.caps_ext & SMTP_EXT_PIPELINING);
    assert_int_equal(j.nresults, 3);
    for (int i = 0; i < 3; i++) {
        assert_reply(&j.out[i].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
        assert_int_equal(j.out[i].stage, SMTP_STAGE_CONFIRMATION);
        assert_false(j.out[i].conn_lost);
        assert_int_equal(j.out[i].bytes_sent, t[i].m.body_len);
        assert_true(j.out[i].idle_after);
        for (size_t r = 0; r < t[i].m.nrcpts; r++) {
            assert_reply(&j.out[i].rcpt[r], 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
        }
    }
    assert_quit_ok(&j);
    assert_true(sink_counters(out, "sess=1 quit=1 mesg=3"));
    for (int i = 0; i < 3; i++) {
        tmsg_free(&t[i]);
    }
}

/* Without PIPELINING (lock-step); the idle session QUITs by itself after idle_ms. */
static void
test_sink_lockstep_idle(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), "-p", (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[2];
    struct job j = {.no_quit = true};
    uint64_t start = now_ms();

    cfg.idle_ms = 300;
    tmsg_simple(&t[0], "a@client.test", "x@sink.test y@sink.test");
    tmsg_simple(&t[1], "a@client.test", "z@sink.test");
    j.msgs[j.nmsgs++] = &t[0];
    j.msgs[j.nmsgs++] = &t[1];
    session(port, &cfg, &j, 5000);
    assert_false(j.caps_ext & SMTP_EXT_PIPELINING);
    assert_int_equal(j.nresults, 2);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_reply(&j.out[1].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_quit_ok(&j);
    assert_true(now_ms() - start >= 300);
    assert_true(sink_counters(out, "sess=1 quit=1 mesg=2"));
    tmsg_free(&t[0]);
    tmsg_free(&t[1]);
}

/* Every RCPT refused (soft, then hard): no data, RSET, the session goes on. */
static void
test_sink_rcpt_reject(void **state)
{
    static const struct {
        const char *flag;
        int code;
        const char *enh;
    } cases[] = {{"-r", 450, "4.3.0"}, {"-f", 500, "5.3.0"}};

    for (size_t k = 0; k < 2; k++) {
        char out[300];
        int port = sink_start(out, sizeof(out), cases[k].flag, "RCPT", (const char *)NULL);
        struct smtp_client_cfg cfg = cfg_default();
        struct tmsg t[2];
        struct job j = {0};

        tmsg_simple(&t[0], "a@client.test", "x@sink.test y@sink.test");
        tmsg_simple(&t[1], "a@client.test", "z@sink.test");
        j.msgs[j.nmsgs++] = &t[0];
        j.msgs[j.nmsgs++] = &t[1];
        session(port, &cfg, &j, 5000);
        assert_int_equal(j.nresults, 2);
        for (int i = 0; i < 2; i++) {
            assert_reply(&j.out[i].msg, cases[k].code, cases[k].enh, SMTP_STAGE_RCPTTO);
            assert_false(j.out[i].conn_lost);
            assert_int_equal(j.out[i].bytes_sent, 0);
            for (size_t r = 0; r < t[i].m.nrcpts; r++) {
                assert_reply(&j.out[i].rcpt[r], cases[k].code, cases[k].enh, SMTP_STAGE_RCPTTO);
            }
        }
        assert_quit_ok(&j);
        assert_true(sink_counters(out, "sess=1 quit=1 mesg=0"));
        tmsg_free(&t[0]);
        tmsg_free(&t[1]);
        kids_stop();
    }
}

/* MAIL refused; DATA refused; the final dot refused. */
static void
test_sink_mail_data_reject(void **state)
{
    static const struct {
        const char *flag, *cmd;
        int code;
        const char *enh;
        enum smtp_stage stage;
    } cases[] = {
        {"-f", "MAIL", 500, "5.3.0", SMTP_STAGE_MAILFROM},
        {"-f", "DATA", 500, "5.3.0", SMTP_STAGE_DATA},
        {"-r", ".", 450, "4.3.0", SMTP_STAGE_CONFIRMATION},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char out[300];
        int port = sink_start(out, sizeof(out), cases[k].flag, cases[k].cmd, (const char *)NULL);
        struct smtp_client_cfg cfg = cfg_default();
        struct tmsg t[2];
        struct job j = {0};

        tmsg_simple(&t[0], "a@client.test", "x@sink.test y@sink.test");
        tmsg_simple(&t[1], "a@client.test", "z@sink.test");
        j.msgs[j.nmsgs++] = &t[0];
        j.msgs[j.nmsgs++] = &t[1];
        session(port, &cfg, &j, 5000);
        assert_int_equal(j.nresults, 2);
        for (int i = 0; i < 2; i++) {
            assert_reply(&j.out[i].msg, cases[k].code, cases[k].enh, cases[k].stage);
            assert_int_equal(j.out[i].stage, cases[k].stage);
            assert_false(j.out[i].conn_lost);
            for (size_t r = 0; r < t[i].m.nrcpts; r++) {
                assert_reply(&j.out[i].rcpt[r], cases[k].code, cases[k].enh, cases[k].stage);
            }
        }
        assert_quit_ok(&j);
        tmsg_free(&t[0]);
        tmsg_free(&t[1]);
        kids_stop();
    }
}

/* The server hangs up at DATA: the message gets conn_lost, then closed(). */
static void
test_sink_disconnect_at_data(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), "-q", "DATA", (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t;
    struct job j = {0};

    tmsg_simple(&t, "a@client.test", "x@sink.test y@sink.test");
    j.msgs[j.nmsgs++] = &t;
    session(port, &cfg, &j, 5000);
    assert_int_equal(j.nresults, 1);
    assert_true(j.out[0].conn_lost);
    assert_false(j.out[0].idle_after);
    assert_reply(&j.out[0].msg, 0, "", SMTP_STAGE_DATA);
    assert_reply(&j.out[0].rcpt[0], 0, "", SMTP_STAGE_DATA);
    assert_reply(&j.out[0].rcpt[1], 0, "", SMTP_STAGE_DATA);
    assert_true(j.closed);
    assert_int_equal(j.closed_stage, SMTP_STAGE_DATA);
    assert_reply(&j.why, 0, "", SMTP_STAGE_DATA);
    assert_text_has(&j.why, "connection closed by server while waiting for reply to DATA");
    tmsg_free(&t);
}

/* 421 in the middle of a transaction ends it and the session. */
static void
test_sink_421(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), "-Q", "RCPT", (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t;
    struct job j = {0};

    tmsg_simple(&t, "a@client.test", "x@sink.test y@sink.test");
    j.msgs[j.nmsgs++] = &t;
    session(port, &cfg, &j, 5000);
    assert_int_equal(j.nresults, 1);
    assert_true(j.out[0].conn_lost);
    assert_reply(&j.out[0].rcpt[0], 421, "4.0.0", SMTP_STAGE_RCPTTO);
    assert_reply(&j.out[0].rcpt[1], 421, "4.0.0", SMTP_STAGE_RCPTTO);
    assert_true(j.closed);
    assert_reply(&j.why, 421, "4.0.0", SMTP_STAGE_RCPTTO);
    tmsg_free(&t);
}

/* Replies slower than the timeouts: each ends the message and the session at its stage. */
static void
test_sink_timeouts(void **state)
{
    static const struct {
        const char *opt1, *opt2;
        enum smtp_stage stage;
        const char *text;
    } cases[] = {
        {"-W", "RCPT:3", SMTP_STAGE_RCPTTO, "timeout waiting for reply to RCPT TO"},
        {"-w", "3", SMTP_STAGE_DATA, "timeout waiting for reply to DATA"},
        {"-W", ".:3", SMTP_STAGE_CONFIRMATION, "timeout waiting for reply to end of data"},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char out[300];
        struct tmsg t;
        struct smtp_client_cfg cfg = cfg_default();
        struct job j = {0};
        /* lock-step: smtp-sink holds back all pipelined replies behind a slow one */
        int port =
            sink_start(out, sizeof(out), "-p", cases[k].opt1, cases[k].opt2, (const char *)NULL);
        uint64_t start = now_ms();

        cfg.rcptto_ms = cfg.data_ms = cfg.body_ms = 300;
        tmsg_simple(&t, "a@client.test", "x@sink.test");
        j.msgs[j.nmsgs++] = &t;
        session(port, &cfg, &j, 5000);
        assert_true(now_ms() - start < 2000);
        assert_int_equal(j.nresults, 1);
        assert_true(j.out[0].conn_lost);
        assert_reply(&j.out[0].msg, 0, "", cases[k].stage);
        assert_reply(&j.out[0].rcpt[0], 0, "", cases[k].stage);
        assert_true(j.closed);
        assert_int_equal(j.closed_stage, cases[k].stage);
        assert_reply(&j.why, 0, "", cases[k].stage);
        assert_string_equal(j.why.text, cases[k].text);
        tmsg_free(&t);
        kids_stop();
    }
}

/* A server without ESMTP: EHLO gets 500, HELO works, no extensions are used. */
static void
test_sink_helo_fallback(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), "-e", (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t;
    struct job j = {0};

    tmsg_simple(&t, "a@client.test", "x@sink.test");
    t.m.ret = SMTP_RET_HDRS; /* would be a syntax error without ESMTP */
    t.m.eightbit = true;
    cfg.send_8bitmime = true;
    j.msgs[j.nmsgs++] = &t;
    session(port, &cfg, &j, 5000);
    assert_true(j.ready);
    assert_int_equal(j.caps_ext, 0);
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_quit_ok(&j);
    tmsg_free(&t);
}

/* LMTP: one reply per recipient after the data. */
static void
test_sink_lmtp(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), "-L", (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[2];
    struct job j = {0};

    cfg.lmtp = true;
    tmsg_simple(&t[0], "a@client.test", "x@sink.test y@sink.test z@sink.test");
    tmsg_simple(&t[1], "a@client.test", "w@sink.test");
    j.msgs[j.nmsgs++] = &t[0];
    j.msgs[j.nmsgs++] = &t[1];
    session(port, &cfg, &j, 5000);
    assert_int_equal(j.nresults, 2);
    assert_reply(&j.out[0].msg, 250, "2.2.0", SMTP_STAGE_CONFIRMATION);
    for (size_t r = 0; r < 3; r++) {
        assert_reply(&j.out[0].rcpt[r], 250, "2.2.0", SMTP_STAGE_CONFIRMATION);
    }
    assert_reply(&j.out[1].rcpt[0], 250, "2.2.0", SMTP_STAGE_CONFIRMATION);
    assert_quit_ok(&j);
    assert_true(sink_counters(out, "sess=1 quit=1 mesg=2"));
    tmsg_free(&t[0]);
    tmsg_free(&t[1]);
}

/*
 * The server answers 550 right after 354, stops reading and hangs up while
 * the message (far larger than the socket buffers) is still being sent:
 * the message fails at stage BODY, with the 550 or (when the connection
 * reset overtakes the reply) a local reason.
 */
static void
test_sink_reply_during_body(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), "-A", "0", (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    char line[80];
    struct tmsg t;
    struct job j = {0};

    memset(line, 'x', sizeof(line));
    line[sizeof(line) - 2] = '\r';
    line[sizeof(line) - 1] = '\n';
    tmsg_simple(&t, "a@client.test", "x@sink.test");
    for (int i = 0; i < 400000; i++) { /* 32 MB */
        assert_int_equal(write(t.m.fd, line, sizeof(line)), (ssize_t)sizeof(line));
    }
    t.m.body_off = 7 + 5 + t.m.body_len + 7; /* after the small body and its trailer */
    t.m.body_len = 400000 * sizeof(line);
    j.msgs[j.nmsgs++] = &t;
    session(port, &cfg, &j, 10000);
    assert_int_equal(j.nresults, 1);
    assert_true(j.out[0].conn_lost);
    assert_int_equal(j.out[0].stage, SMTP_STAGE_BODY);
    if (j.out[0].rcpt[0].code != 0) {
        assert_reply(&j.out[0].rcpt[0], 550, "", SMTP_STAGE_BODY);
        assert_string_equal(j.out[0].rcpt[0].text, "This violates SMTP");
    }
    assert_reply(&j.out[0].rcpt[0], j.out[0].msg.code, "", SMTP_STAGE_BODY);
    assert_true(j.out[0].bytes_sent > 0 && j.out[0].bytes_sent < t.m.body_len);
    assert_true(j.closed);
    assert_int_equal(j.closed_stage, SMTP_STAGE_BODY);
    tmsg_free(&t);
}

/* Nobody listens: closed() at stage 0. Abort: no callback at all. */
static void
test_connect_refused_and_abort(void **state)
{
    char out[300];
    struct smtp_client_cfg cfg = cfg_default();
    struct job j = {0};
    int port;

    session(free_port(), &cfg, &j, 3000);
    assert_false(j.ready);
    assert_true(j.closed);
    assert_int_equal(j.closed_stage, SMTP_STAGE_NOT_CONNECTED);
    assert_reply(&j.why, 0, "", SMTP_STAGE_NOT_CONNECTED);
    assert_text_has(&j.why, "connect failed");

    port = sink_start(out, sizeof(out), (const char *)NULL);
    memset(&j, 0, sizeof(j));
    j.abort_in_ready = true;
    session(port, &cfg, &j, 300);
    assert_true(j.ready);
    assert_false(j.closed);
    assert_true(sink_counters(out, "sess=1"));
}

/* ---- aiosmtpd ---- */

/* Recipients accepted, deferred and refused in one transaction. */
static void
test_peer_mixed_rcpts(void **state)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t;
    struct job j = {0};
    unsigned before = peer_count(PEER_PLAIN);
    char *facts;

    tmsg_simple(&t, "a@client.test",
                "ok1@peer.test defer1@peer.test reject1@peer.test ok2@peer.test");
    j.msgs[j.nmsgs++] = &t;
    session(peer_ports[PEER_PLAIN], &cfg, &j, 5000);
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_reply(&j.out[0].rcpt[0], 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_reply(&j.out[0].rcpt[1], 450, "4.2.1", SMTP_STAGE_RCPTTO);
    assert_string_equal(j.out[0].rcpt[1].text, "Mailbox busy, try later");
    assert_reply(&j.out[0].rcpt[2], 550, "5.1.1", SMTP_STAGE_RCPTTO);
    assert_reply(&j.out[0].rcpt[3], 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_quit_ok(&j);
    assert_int_equal(peer_count(PEER_PLAIN), before + 1);
    facts = peer_record(PEER_PLAIN, before + 1, "txt", NULL);
    assert_non_null(strstr(facts, "rcpt ok1@peer.test\nrcpt ok2@peer.test\n"));
    assert_null(strstr(facts, "defer1"));
    free(facts);
    tmsg_free(&t);
}

/* Pipelined failures: MAIL refused, every RCPT refused; the session goes on. */
static void
test_peer_pipelined_failures(void **state)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[3];
    struct job j = {0};
    unsigned before = peer_count(PEER_PLAIN);
    char *facts;

    tmsg_simple(&t[0], "mailreject@client.test", "ok1@peer.test ok2@peer.test");
    tmsg_simple(&t[1], "a@client.test", "reject1@peer.test defer1@peer.test");
    tmsg_simple(&t[2], "b@client.test", "ok3@peer.test");
    for (int i = 0; i < 3; i++) {
        j.msgs[j.nmsgs++] = &t[i];
    }
    session(peer_ports[PEER_PLAIN], &cfg, &j, 5000);
    assert_true(j.caps_ext & SMTP_EXT_PIPELINING);
    assert_int_equal(j.nresults, 3);
    assert_reply(&j.out[0].msg, 550, "5.7.1", SMTP_STAGE_MAILFROM);
    assert_reply(&j.out[0].rcpt[0], 550, "5.7.1", SMTP_STAGE_MAILFROM);
    assert_reply(&j.out[0].rcpt[1], 550, "5.7.1", SMTP_STAGE_MAILFROM);
    assert_reply(&j.out[1].msg, 550, "5.1.1", SMTP_STAGE_RCPTTO);
    assert_reply(&j.out[1].rcpt[0], 550, "5.1.1", SMTP_STAGE_RCPTTO);
    assert_reply(&j.out[1].rcpt[1], 450, "4.2.1", SMTP_STAGE_RCPTTO);
    assert_reply(&j.out[2].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    for (int i = 0; i < 3; i++) {
        assert_false(j.out[i].conn_lost);
        assert_true(j.out[i].idle_after);
    }
    assert_quit_ok(&j);
    assert_int_equal(peer_count(PEER_PLAIN), before + 1);
    facts = peer_record(PEER_PLAIN, before + 1, "txt", NULL);
    assert_non_null(strstr(facts, "mail_from b@client.test\nmail_options"));
    assert_non_null(strstr(facts, "rcpt ok3@peer.test\n"));
    free(facts);
    for (int i = 0; i < 3; i++) {
        tmsg_free(&t[i]);
    }
}

/* What the receiver gets: prepend + body, every line ending CRLF, dots intact. */
static const char tricky_prepend[] = "Received: from a\r\n\tby b; today\r\n";
static const char tricky_body[] = "Subject: dots\n\n.leading dot\r\n..two dots\nbare lf\n.\n"
                                  "bare cr\rmid\r\n.\r\nlast line without newline";
static const char tricky_expected[] = "Received: from a\r\n\tby b; today\r\n"
                                      "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n"
                                      "bare lf\r\n.\r\nbare cr\r\nmid\r\n.\r\n"
                                      "last line without newline\r\n";

/* A body of about 600 KiB (several chunks, waits for the socket) and its expected form. */
static char *
big_body(size_t *len, char **expected, size_t *exp_len)
{
    struct buf b, e;

    buf_init(&b, BUF_UNLIMITED);
    buf_init(&e, BUF_UNLIMITED);
    buf_append_cstr(&b, "Subject: big\n\n");
    buf_append_cstr(&e, "Subject: big\r\n\r\n");
    for (int i = 0; i < 12000; i++) {
        const char *lead = i % 7 == 0 ? "." : "";

        buf_printf(&b, "%sline %05d abcdefghijklmnopqrstuvwxyz\n", lead, i);
        buf_printf(&e, "%sline %05d abcdefghijklmnopqrstuvwxyz\r\n", lead, i);
    }
    *len = buf_len(&b);
    *exp_len = buf_len(&e);
    *expected = buf_steal_cstr(&e);
    return buf_steal_cstr(&b);
}

/*
 * The two messages of one session, the tricky one (prepend and body) then a
 * big one of blen octets, were accepted and arrived at peer s as expected.
 */
static void
assert_tricky_and_big_arrived(const struct job *j, int s, unsigned before, size_t blen,
                              const char *expected, size_t elen)
{
    size_t got_len;
    char *got;

    assert_int_equal(j->nresults, 2);
    assert_reply(&j->out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_reply(&j->out[1].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_int_equal(j->out[0].bytes_sent, sizeof(tricky_prepend) - 1 + sizeof(tricky_body) - 1);
    assert_int_equal(j->out[1].bytes_sent, blen);
    assert_quit_ok(j);
    got = peer_record(s, before + 1, "eml", &got_len);
    assert_int_equal(got_len, sizeof(tricky_expected) - 1);
    assert_memory_equal(got, tricky_expected, got_len);
    free(got);
    got = peer_record(s, before + 2, "eml", &got_len);
    assert_int_equal(got_len, elen);
    assert_memory_equal(got, expected, elen);
    free(got);
}

static void
check_bytes(enum peer_server s, bool pipelining)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[2];
    struct job j = {0};
    unsigned before = peer_count(s);
    size_t blen, elen;
    char *expected, *body = big_body(&blen, &expected, &elen);
    char *facts1, *facts2;

    tmsg_init(&t[0], "a@client.test", "ok@peer.test", tricky_prepend, tricky_body,
              sizeof(tricky_body) - 1);
    tmsg_init(&t[1], "a@client.test", "ok@peer.test", "", body, blen);
    j.msgs[j.nmsgs++] = &t[0];
    j.msgs[j.nmsgs++] = &t[1];
    session(peer_ports[s], &cfg, &j, 10000);
    assert_int_equal(!!(j.caps_ext & SMTP_EXT_PIPELINING), pipelining);
    assert_tricky_and_big_arrived(&j, s, before, blen, expected, elen);
    /* both over one connection: the same client port */
    facts1 = peer_record(s, before + 1, "txt", NULL);
    facts2 = peer_record(s, before + 2, "txt", NULL);
    assert_string_equal(strstr(facts1, "peer_port"), strstr(facts2, "peer_port"));
    free(facts1);
    free(facts2);
    free(body);
    free(expected);
    tmsg_free(&t[0]);
    tmsg_free(&t[1]);
}

static void
test_peer_exact_bytes(void **state)
{
    check_bytes(PEER_PLAIN, true);
    check_bytes(PEER_NODSN, false);
}

/*
 * Messages from memory (as the delivery engine sends a downconverted copy):
 * the same bytes arrive as from a file, dot-stuffing and line ends handled
 * by the same encoder, over several chunks and output waits.
 */
static void
test_peer_memory(void **state)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[2];
    struct job j = {0};
    unsigned before = peer_count(PEER_PLAIN);
    size_t blen, elen, mlen = sizeof(tricky_prepend) - 1 + sizeof(tricky_body) - 1;
    char *expected, *body = big_body(&blen, &expected, &elen);
    char *mem = xmalloc(mlen);
    char *facts;
    char want[64];

    memcpy(mem, tricky_prepend, sizeof(tricky_prepend) - 1);
    memcpy(mem + sizeof(tricky_prepend) - 1, tricky_body, sizeof(tricky_body) - 1);
    cfg.send_8bitmime = true;
    tmsg_mem(&t[0], "a@client.test", "ok@peer.test", mem, mlen);
    tmsg_mem(&t[1], "a@client.test", "ok@peer.test", body, blen);
    j.msgs[j.nmsgs++] = &t[0];
    j.msgs[j.nmsgs++] = &t[1];
    session(peer_ports[PEER_PLAIN], &cfg, &j, 10000);
    assert_true(j.caps_ext & SMTP_EXT_8BITMIME); /* aiosmtpd offers it */
    assert_tricky_and_big_arrived(&j, PEER_PLAIN, before, blen, expected, elen);
    facts = peer_record(PEER_PLAIN, before + 1, "txt", NULL);
    assert_null(strstr(facts, "BODY=")); /* not eightbit: a downconverted copy is 7bit */
    snprintf(want, sizeof(want), "SIZE=%zu", mlen);
    assert_non_null(strstr(facts, want));
    free(facts);
    free(body);
    free(expected);
    free(mem);
    tmsg_free(&t[0]);
    tmsg_free(&t[1]);
}

/* DSN and BODY parameters when offered, none when not. */
static void
test_peer_dsn(void **state)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t;
    struct job j = {0};
    unsigned before = peer_count(PEER_PLAIN);
    char *facts;

    cfg.send_8bitmime = true;
    tmsg_simple(&t, "a@client.test", "ok1@peer.test ok2@peer.test");
    t.m.ret = SMTP_RET_HDRS;
    t.m.envid = "id+1 x=y";
    t.m.eightbit = true;
    t.rcpts[0].notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE;
    t.rcpts[0].orcpt = "Orig+1@peer.test";
    t.rcpts[1].notify = SMTP_NOTIFY_NEVER;
    j.msgs[j.nmsgs++] = &t;
    session(peer_ports[PEER_PLAIN], &cfg, &j, 5000);
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    facts = peer_record(PEER_PLAIN, before + 1, "txt", NULL);
    assert_non_null(strstr(facts, "mail_dsn RET=HDRS ENVID=id+2B1+20x+3Dy\n"));
    assert_non_null(strstr(facts, "BODY=8BITMIME"));
    assert_non_null(strstr(facts, "SIZE=25"));
    assert_non_null(strstr(
        facts, "rcpt_dsn ok1@peer.test NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig+2B1@peer.test\n"));
    assert_non_null(strstr(facts, "rcpt_dsn ok2@peer.test NOTIFY=NEVER\n"));
    free(facts);

    /* the nodsn server answers DSN parameters with 555: none may be sent */
    memset(&j, 0, sizeof(j));
    j.msgs[j.nmsgs++] = &t;
    before = peer_count(PEER_NODSN);
    session(peer_ports[PEER_NODSN], &cfg, &j, 5000);
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    facts = peer_record(PEER_NODSN, before + 1, "txt", NULL);
    assert_non_null(strstr(facts, "mail_dsn \n"));
    assert_null(strstr(facts, "rcpt_dsn"));
    free(facts);
    tmsg_free(&t);
}

/* SMTPUTF8 needed: refused locally without the extension, sent with it. */
static void
test_peer_smtputf8(void **state)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[2];
    struct job j = {0};
    unsigned before = peer_count(PEER_NODSN);
    char *facts;

    tmsg_simple(&t[0], "j\xc3\xb6rg@client.test", "ok@peer.test");
    t[0].m.smtputf8 = true;
    tmsg_simple(&t[1], "a@client.test", "ok@peer.test");
    j.msgs[j.nmsgs++] = &t[0];
    j.msgs[j.nmsgs++] = &t[1];
    session(peer_ports[PEER_NODSN], &cfg, &j, 5000);
    assert_int_equal(j.nresults, 2);
    assert_reply(&j.out[0].msg, 553, "5.6.7", SMTP_STAGE_MAILFROM);
    assert_reply(&j.out[0].rcpt[0], 553, "5.6.7", SMTP_STAGE_MAILFROM);
    assert_int_equal(j.out[0].bytes_sent, 0);
    assert_true(j.out[0].idle_after);
    assert_reply(&j.out[1].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_int_equal(peer_count(PEER_NODSN), before + 1);
    facts = peer_record(PEER_NODSN, before + 1, "txt", NULL);
    assert_non_null(strstr(facts, "mail_from a@client.test\n"));
    free(facts);

    memset(&j, 0, sizeof(j));
    j.msgs[j.nmsgs++] = &t[0];
    before = peer_count(PEER_PLAIN);
    session(peer_ports[PEER_PLAIN], &cfg, &j, 5000);
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    facts = peer_record(PEER_PLAIN, before + 1, "txt", NULL);
    assert_non_null(strstr(facts, "SMTPUTF8"));
    assert_non_null(strstr(facts, "mail_from j\xc3\xb6rg@client.test\n"));
    free(facts);
    tmsg_free(&t[0]);
    tmsg_free(&t[1]);
}

/* A message over the server's SIZE is refused without being sent. */
static void
test_peer_size(void **state)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t[2];
    struct job j = {0};
    unsigned before = peer_count(PEER_SMALL);
    char *facts;

    tmsg_simple(&t[0], "a@client.test", "ok@peer.test");
    t[0].m.size = 5000;
    tmsg_simple(&t[1], "a@client.test", "ok@peer.test");
    j.msgs[j.nmsgs++] = &t[0];
    j.msgs[j.nmsgs++] = &t[1];
    session(peer_ports[PEER_SMALL], &cfg, &j, 5000);
    assert_int_equal(j.size_max, 1000);
    assert_int_equal(j.nresults, 2);
    assert_reply(&j.out[0].msg, 552, "5.3.4", SMTP_STAGE_MAILFROM);
    assert_reply(&j.out[1].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_int_equal(peer_count(PEER_SMALL), before + 1);
    facts = peer_record(PEER_SMALL, before + 1, "txt", NULL);
    assert_non_null(strstr(facts, "SIZE=25"));
    free(facts);
    tmsg_free(&t[0]);
    tmsg_free(&t[1]);
}

/* LMTP with a different outcome per recipient. */
static void
test_peer_lmtp_mixed(void **state)
{
    struct smtp_client_cfg cfg = cfg_default();
    struct tmsg t;
    struct job j = {0};

    cfg.lmtp = true;
    tmsg_simple(&t, "a@client.test",
                "ok@peer.test lmtpdefer@peer.test lmtpreject@peer.test reject@peer.test");
    j.msgs[j.nmsgs++] = &t;
    session(peer_ports[PEER_LMTP], &cfg, &j, 5000);
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].rcpt[0], 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_string_equal(j.out[0].rcpt[0].text, "Delivered to ok@peer.test");
    assert_reply(&j.out[0].rcpt[1], 452, "4.2.2", SMTP_STAGE_CONFIRMATION);
    assert_reply(&j.out[0].rcpt[2], 550, "5.2.1", SMTP_STAGE_CONFIRMATION);
    assert_reply(&j.out[0].rcpt[3], 550, "5.1.1", SMTP_STAGE_RCPTTO);
    assert_reply(&j.out[0].msg, 452, "4.2.2", SMTP_STAGE_CONFIRMATION);
    assert_false(j.out[0].conn_lost);
    assert_quit_ok(&j);
    tmsg_free(&t);
}

/* ---- STARTTLS ---- */

static void
tls_session(enum peer_server s, enum smtp_client_tls mode, enum smtp_client_verify verify,
            SSL_CTX *ctx, const char *name, struct job *j, struct tmsg *t)
{
    struct smtp_client_cfg cfg = cfg_default();
    const char *names[1] = {name};

    cfg.tls = mode;
    cfg.verify = verify;
    cfg.tls_ctx = ctx;
    cfg.verify_names = names;
    cfg.nverify_names = name ? 1 : 0;
    memset(j, 0, sizeof(*j));
    j->msgs[j->nmsgs++] = t;
    session(peer_ports[s], &cfg, j, 5000);
}

/* The tls flag of the last message a server recorded. */
static bool
peer_last_tls(enum peer_server s)
{
    char *facts = peer_record(s, peer_count(s), "txt", NULL);
    bool tls = strstr(facts, "\ntls 1\n") != NULL;

    free(facts);
    return tls;
}

static void
test_tls_modes(void **state)
{
    SSL_CTX *ctx = client_ctx("ca.pem", NULL);
    struct tmsg t;
    struct job j;

    tmsg_simple(&t, "a@client.test", "ok@peer.test");

    tls_session(PEER_TLS, SMTP_CLIENT_TLS_REQUIRED, SMTP_CLIENT_VERIFY_NO, ctx, NULL, &j, &t);
    assert_true(j.tls_active);
    assert_non_null(strstr(j.tls_desc, "version=TLSv1."));
    assert_true(j.caps_ext & SMTP_EXT_ENHANCEDSTATUSCODES);
    assert_false(j.caps_ext & SMTP_EXT_STARTTLS); /* the EHLO after TLS */
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_quit_ok(&j);
    assert_true(peer_last_tls(PEER_TLS));

    tls_session(PEER_TLS, SMTP_CLIENT_TLS_NO, SMTP_CLIENT_VERIFY_NO, ctx, NULL, &j, &t);
    assert_false(j.tls_active);
    assert_true(j.caps_ext & SMTP_EXT_STARTTLS);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_false(peer_last_tls(PEER_TLS));

    tls_session(PEER_PLAIN, SMTP_CLIENT_TLS_IFAVAILABLE, SMTP_CLIENT_VERIFY_NO, ctx, NULL, &j, &t);
    assert_false(j.tls_active);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_false(peer_last_tls(PEER_PLAIN));

    tls_session(PEER_TLS, SMTP_CLIENT_TLS_IFAVAILABLE, SMTP_CLIENT_VERIFY_NO, ctx, NULL, &j, &t);
    assert_true(j.tls_active);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_true(peer_last_tls(PEER_TLS));

    tls_session(PEER_PLAIN, SMTP_CLIENT_TLS_REQUIRED, SMTP_CLIENT_VERIFY_NO, ctx, NULL, &j, &t);
    assert_false(j.ready);
    assert_int_equal(j.nresults, 0);
    assert_true(j.closed);
    assert_reply(&j.why, 0, "", SMTP_STAGE_AFTER_EHLO);
    assert_string_equal(j.why.text, "TLS required but STARTTLS not offered by the server");
    SSL_CTX_free(ctx);
    tmsg_free(&t);
}

static void
test_tls_verify(void **state)
{
    SSL_CTX *good = client_ctx("ca.pem", NULL);
    SSL_CTX *wrong = client_ctx("wrongca.pem", NULL);
    struct tmsg t;
    struct job j;

    tmsg_simple(&t, "a@client.test", "ok@peer.test");

    tls_session(PEER_TLS, SMTP_CLIENT_TLS_REQUIRED, SMTP_CLIENT_VERIFY_CA, good, NULL, &j, &t);
    assert_true(j.tls_active);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);

    tls_session(PEER_TLS, SMTP_CLIENT_TLS_REQUIRED, SMTP_CLIENT_VERIFY_CA, wrong, NULL, &j, &t);
    assert_false(j.ready);
    assert_true(j.closed);
    assert_reply(&j.why, 0, "", SMTP_STAGE_TLS_HANDSHAKE);
    assert_text_has(&j.why, "certificate verify failed: ");

    tls_session(PEER_TLS, SMTP_CLIENT_TLS_REQUIRED, SMTP_CLIENT_VERIFY_HOST, good, "mx.test", &j,
                &t);
    assert_true(j.tls_active);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);

    tls_session(PEER_TLS, SMTP_CLIENT_TLS_IFAVAILABLE, SMTP_CLIENT_VERIFY_HOST, good, "wrong.test",
                &j, &t);
    assert_false(j.ready);
    assert_true(j.closed);
    assert_int_equal(j.closed_stage, SMTP_STAGE_TLS_HANDSHAKE);
    assert_text_has(&j.why, "certificate name mismatch");
    assert_text_has(&j.why, "wrong.test");
    SSL_CTX_free(good);
    SSL_CTX_free(wrong);
    tmsg_free(&t);
}

/* A handshake that cannot succeed (TLS 1.2 client, TLS 1.3-only server): stage 17. */
static void
test_tls_handshake_failure(void **state)
{
    SSL_CTX *ctx = client_ctx("ca.pem", "-TLSv1.3");
    struct tmsg t;
    struct job j;

    tmsg_simple(&t, "a@client.test", "ok@peer.test");
    tls_session(PEER_TLS13, SMTP_CLIENT_TLS_IFAVAILABLE, SMTP_CLIENT_VERIFY_NO, ctx, NULL, &j, &t);
    assert_false(j.ready);
    assert_true(j.closed);
    assert_int_equal(j.closed_stage, SMTP_STAGE_TLS_HANDSHAKE);
    assert_reply(&j.why, 0, "", SMTP_STAGE_TLS_HANDSHAKE);
    assert_text_has(&j.why, "TLS handshake failed");
    SSL_CTX_free(ctx);
    tmsg_free(&t);
}

/*
 * A server without 8BITMIME: the capabilities say so from ready() on (the
 * caller's cue to downconvert), and an 8bit message goes without BODY=.
 */
static void
test_sink_no_8bitmime(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), "-8", (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    static const char msg[] = "Subject: 7bit\r\n\r\n.dot\r\n";
    struct tmsg t;
    struct job j = {0};

    cfg.send_8bitmime = true;
    tmsg_mem(&t, "a@client.test", "x@sink.test", msg, sizeof(msg) - 1);
    j.msgs[j.nmsgs++] = &t;
    session(port, &cfg, &j, 5000);
    assert_true(j.ready);
    assert_false(j.caps_ext & SMTP_EXT_8BITMIME);
    assert_true(j.caps_ext & SMTP_EXT_PIPELINING);
    assert_int_equal(j.nresults, 1);
    assert_reply(&j.out[0].msg, 250, "2.0.0", SMTP_STAGE_CONFIRMATION);
    assert_int_equal(j.out[0].bytes_sent, sizeof(msg) - 1);
    assert_quit_ok(&j);
    assert_true(sink_counters(out, "sess=1 quit=1 mesg=1"));
    tmsg_free(&t);
}

/* Argument checks: never a callback from inside a call. */
static void
test_send_checks(void **state)
{
    char out[300];
    int port = sink_start(out, sizeof(out), (const char *)NULL);
    struct smtp_client_cfg cfg = cfg_default();
    struct sockaddr_in sa = loopback(port);
    struct tmsg t;
    struct job j = {0};
    int err = 0;
    struct smtp_client *c;

    tmsg_simple(&t, "a@client.test", "bad\r\naddr@x");
    c = smtp_client_connect(loop_group_get(grp, 0), (struct sockaddr *)&sa, sizeof(sa), NULL, 0,
                            &cfg, &job_ops, &j, &err);
    assert_non_null(c);
    assert_int_equal(smtp_client_send(c, &t.m, &t), CELER_EBUSY); /* not ready yet */
    assert_false(smtp_client_idle(c));
    cfg.tls = SMTP_CLIENT_TLS_REQUIRED; /* without a context */
    assert_null(smtp_client_connect(loop_group_get(grp, 0), (struct sockaddr *)&sa, sizeof(sa),
                                    NULL, 0, &cfg, &job_ops, &j, &err));
    assert_int_equal(err, -EINVAL);
    j.no_quit = true;
    run_job(&j, 300); /* ready: nothing to send */
    assert_true(j.ready);
    assert_true(smtp_client_idle(c));
    assert_int_equal(smtp_client_send(c, &t.m, &t), -EINVAL);
    smtp_client_quit(c);
    assert_false(smtp_client_idle(c));
    assert_int_equal(smtp_client_send(c, &t.m, &t), CELER_ECLOSED);
    run_job(&j, 3000);
    assert_quit_ok(&j);
    assert_int_equal(j.nresults, 0);

    /* QUIT asked for while connecting: it comes after EHLO, instead of ready() */
    memset(&j, 0, sizeof(j));
    cfg.tls = SMTP_CLIENT_TLS_NO;
    c = smtp_client_connect(loop_group_get(grp, 0), (struct sockaddr *)&sa, sizeof(sa), NULL, 0,
                            &cfg, &job_ops, &j, &err);
    assert_non_null(c);
    smtp_client_quit(c);
    run_job(&j, 3000);
    assert_false(j.ready);
    assert_quit_ok(&j);
    tmsg_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sink_several_messages, test_teardown),
        cmocka_unit_test_teardown(test_sink_lockstep_idle, test_teardown),
        cmocka_unit_test_teardown(test_sink_rcpt_reject, test_teardown),
        cmocka_unit_test_teardown(test_sink_mail_data_reject, test_teardown),
        cmocka_unit_test_teardown(test_sink_disconnect_at_data, test_teardown),
        cmocka_unit_test_teardown(test_sink_421, test_teardown),
        cmocka_unit_test_teardown(test_sink_timeouts, test_teardown),
        cmocka_unit_test_teardown(test_sink_helo_fallback, test_teardown),
        cmocka_unit_test_teardown(test_sink_lmtp, test_teardown),
        cmocka_unit_test_teardown(test_sink_reply_during_body, test_teardown),
        cmocka_unit_test_teardown(test_connect_refused_and_abort, test_teardown),
        cmocka_unit_test_teardown(test_send_checks, test_teardown),
        cmocka_unit_test_teardown(test_sink_no_8bitmime, test_teardown),
        cmocka_unit_test_teardown(test_peer_mixed_rcpts, test_teardown),
        cmocka_unit_test_teardown(test_peer_pipelined_failures, test_teardown),
        cmocka_unit_test_teardown(test_peer_exact_bytes, test_teardown),
        cmocka_unit_test_teardown(test_peer_memory, test_teardown),
        cmocka_unit_test_teardown(test_peer_dsn, test_teardown),
        cmocka_unit_test_teardown(test_peer_smtputf8, test_teardown),
        cmocka_unit_test_teardown(test_peer_size, test_teardown),
        cmocka_unit_test_teardown(test_peer_lmtp_mixed, test_teardown),
        cmocka_unit_test_teardown(test_tls_modes, test_teardown),
        cmocka_unit_test_teardown(test_tls_verify, test_teardown),
        cmocka_unit_test_teardown(test_tls_handshake_failure, test_teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
