/*
 * daemon: celerd's composition root and life cycle.
 *
 * Owns everything the running daemon has: the current configuration
 * snapshot, the event-loop group, the log writer and its files, the pidfile,
 * and the admin event base on the main thread, which handles signals:
 * SIGHUP reloads the configuration (a file with errors is rejected whole and
 * the running one stays, the errors go to the paniclog) and reopens the logs;
 * SIGTERM and SIGINT shut down cleanly: every loop stops and is joined, and
 * everything is freed. Start-up order: configuration, logs, spool directory,
 * pidfile, sockets, privilege drop, loops.
 */
#ifndef CELER_ADMIN_DAEMON_H
#define CELER_ADMIN_DAEMON_H

#include <stdbool.h>

struct daemon_opts {
    const char *config_path;
    bool foreground; /* -d: stay in the foreground, log to stderr too */
};

/* Runs the daemon until it is told to stop; returns the process exit status. */
int daemon_main(const struct daemon_opts *opts);

#endif
