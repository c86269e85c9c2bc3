/*
 * smtp_authdb: SMTP AUTH password file (see smtp_authdb.h).
 */
#include "smtp/smtp_authdb.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"

struct smtp_authdb {
    char *path;
    pthread_mutex_t lock;
    struct map users; /* user -> owned secret string */
    struct timespec mtime;
};

const char *
smtp_authdb_uri_path(const char *uri)
{
    static const char scheme[] = "file://";

    if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0) {
        return NULL;
    }
    return uri + sizeof(scheme) - 1;
}

static int
smtp_authdb_load(struct smtp_authdb *db, struct buf *why)
{
    FILE *f = fopen(db->path, "r");
    struct map users;
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0, clear = 0;
    struct stat st;

    if (f == NULL) {
        buf_printf(why, "cannot read password file %s: %s", db->path, strerror(errno));
        return -errno;
    }
    map_init(&users, false);
    while (getline(&line, &cap, f) >= 0) {
        struct strv l = strv_trim(strv_from_cstr(line));
        struct strv user;

        lineno++;
        if (l.len == 0 || l.ptr[0] == '#') {
            continue;
        }
        user = strv_split(&l, ':');
        if (user.len == 0 || l.len == 0) {
            buf_printf(why, "%s:%u: expected user:secret", db->path, lineno);
            free(line);
            fclose(f);
            map_release(&users, free);
            return CELER_EPARSE;
        }
        clear += l.ptr[0] != '$';
        free(map_put(&users, user, strv_dup(l)));
    }
    free(line);
    if (fstat(fileno(f), &st) == 0) {
        db->mtime = st.st_mtim;
    }
    fclose(f);
    if (clear) {
        log_warning("authdb_cleartext path=%s entries=%u: store salted hashes (openssl passwd -6)",
                    db->path, clear);
    }
    map_release(&db->users, free);
    db->users = users;
    return 0;
}

struct smtp_authdb *
smtp_authdb_open(const char *path, struct buf *why)
{
    struct smtp_authdb *db = XNEW(struct smtp_authdb);

    db->path = xstrdup(path);
    pthread_mutex_init(&db->lock, NULL);
    map_init(&db->users, false);
    if (smtp_authdb_load(db, why) != 0) {
        smtp_authdb_free(db);
        return NULL;
    }
    return db;
}

void
smtp_authdb_free(struct smtp_authdb *db)
{
    if (db == NULL) {
        return;
    }
    map_release(&db->users, free);
    pthread_mutex_destroy(&db->lock);
    free(db->path);
    free(db);
}

/* Rereads the file if it changed since it was loaded; keeps the old one on errors. */
static void
smtp_authdb_refresh(struct smtp_authdb *db)
{
    struct stat st;

    if (stat(db->path, &st) == 0 &&
        (st.st_mtim.tv_sec != db->mtime.tv_sec || st.st_mtim.tv_nsec != db->mtime.tv_nsec)) {
        struct buf why;

        buf_init(&why, 1024);
        if (smtp_authdb_load(db, &why) != 0) {
            log_error("authdb_reload_failed %.*s", STRV_FMT(buf_data(&why)));
        }
        buf_release(&why);
    }
}

/* Constant-time comparison of two strings of possibly different lengths. */
static bool
smtp_authdb_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);

    for (size_t i = 0; i < la; i++) {
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    }
    return diff == 0;
}

int
smtp_authdb_check(struct smtp_authdb *db, struct strv user, struct strv pass)
{
    char *p = strv_dup(pass);
    int rc = -EACCES;
    const char *secret;

    pthread_mutex_lock(&db->lock);
    smtp_authdb_refresh(db);
    secret = map_get(&db->users, user);
    if (secret == NULL) {
        rc = CELER_ENOTFOUND;
    } else if (secret[0] == '$') {
        struct crypt_data *cd = XNEW(struct crypt_data);
        const char *h = crypt_r(p, secret, cd);

        if (h && h[0] != '*' && smtp_authdb_equal(h, secret)) {
            rc = 0;
        }
        mem_clear_free(cd, sizeof(*cd));
    } else if (smtp_authdb_equal(p, secret)) {
        rc = 0;
    }
    pthread_mutex_unlock(&db->lock);
    mem_clear_free(p, pass.len);
    return rc;
}
