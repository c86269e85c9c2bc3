/*
 * smtp_authdb: the password file behind SMTP AUTH PLAIN and LOGIN.
 *
 * Momentum names the file in the listener's AuthPlainParameters /
 * AuthLoginParameters: [ uri = "file:///path" ]. Each line is
 * "user:secret"; '#' lines and blank lines are comments. The secret should
 * be a salted crypt(3) hash ("$6$salt$..." from `openssl passwd -6`, or
 * yescrypt "$y$..." from mkpasswd); a secret that does not start with '$' is
 * taken as a clear-text password, as Momentum's file:// scheme does, and
 * loading warns about it. The file is reread when its modification time
 * changes. A database is shared by every loop (a mutex guards reloads;
 * checks run under it, crypt_r is reentrant).
 */
#ifndef CELER_SMTP_AUTHDB_H
#define CELER_SMTP_AUTHDB_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"

struct smtp_authdb;

/* Loads path; NULL with the reason (file:line) in why. */
struct smtp_authdb *smtp_authdb_open(const char *path, struct buf *why);
void smtp_authdb_free(struct smtp_authdb *db);
/* 0 when user exists and pass matches; CELER_ENOTFOUND or -EACCES otherwise. */
int smtp_authdb_check(struct smtp_authdb *db, struct strv user, struct strv pass) CELER_WUR;
/* The file path named by a Momentum uri ("file:///x" -> "/x"); NULL if not file://. */
const char *smtp_authdb_uri_path(const char *uri);

#endif
