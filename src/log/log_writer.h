/*
 * log_writer: the one thread that writes every log file.
 *
 * Event loops never wait on a log file: they append whole lines to a file's
 * pending buffer (under a short mutex) and the writer thread moves the bytes
 * to disk with write(2) in large batches. Each file has a ceiling on pending
 * bytes; beyond it lines are dropped and counted rather than blocking the
 * caller. Files are opened O_APPEND, so external rotation works with
 * log_writer_reopen() (SIGHUP, console `reopen logs`). The writer owns its
 * files; log_writer_free() writes what is pending, joins the thread and
 * closes them.
 */
#ifndef CELER_LOG_WRITER_H
#define CELER_LOG_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/log.h"

struct log_writer;
struct log_file;

struct log_writer *log_writer_new(int *err);
/* Writes everything pending, stops the thread, closes every file. NULL ok. */
void log_writer_free(struct log_writer *w);

/*
 * Opens (creating with mode) a log file for appending. If uid is not -1 a
 * newly created file is given to uid:gid, so the daemon can reopen it after
 * dropping privileges. Opening the same path twice returns the same file.
 */
struct log_file *log_writer_open(struct log_writer *w, const char *path, mode_t mode, uid_t uid,
                                 gid_t gid, int *err);
/* Appends one line (a newline is added). Thread-safe; never blocks on I/O. */
void log_file_write(struct log_file *f, const char *line, size_t len);
/* Reopens every file by path (after rotation). Returns the first error. */
int log_writer_reopen(struct log_writer *w) CELER_WUR;
/* Waits until everything appended so far is written. */
void log_writer_flush(struct log_writer *w);
/* Lines dropped because a pending buffer was full. */
uint64_t log_file_dropped(const struct log_file *f);
const char *log_file_path(const struct log_file *f);

/*
 * A core log sink (see core/log.h) writing paniclog lines
 * "unix_ts:celerd: level: message" to the log_file given as arg.
 */
void log_paniclog_sink(enum log_level level, const char *line, size_t len, void *arg);

#endif
