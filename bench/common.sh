# shellcheck shell=bash disable=SC2034  # (variables are used by the sourcing scripts)
# common.sh: settings and helpers shared by the benchmark scripts. Sourced, not run;
# every script that sources it has already done `set -euo pipefail`.
#
# All traffic stays on loopback: smtp-source -> MTA on 127.0.0.1:$MTA_PORT, and the MTA
# relays $RELAY_DOMAIN to smtp-sink on 127.0.0.1:$SINK_PORT. State (configs, spools,
# queues, logs, pid files) lives under $STATE, /tmp/celer-bench by default, so the celer
# spool and the Postfix queue are on the same filesystem.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)        # the celer checkout this folder lives in
STATE=${BENCH_STATE:-/tmp/celer-bench}
MTA_HOST=127.0.0.1
MTA_PORT=${MTA_PORT:-2525}                   # the MTA under test listens here
SINK_HOST=127.0.0.1
SINK_PORT=${SINK_PORT:-2526}                 # smtp-sink listens here
RELAY_DOMAIN=relay.test                      # MTAs relay this domain to the sink
SENDER=bench@source.test
RCPT=user@$RELAY_DOMAIN
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results} # git-ignored
# cgroup that holds the MTA under test; its own name so that another harness on the
# same machine (../shared/bench uses "bench-mta") is not disturbed
CGROUP_NAME=${BENCH_CGROUP:-celer-bench-mta}

mkdir -p "$STATE"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Refuse anything that is not loopback: this harness never sends traffic elsewhere.
case "$MTA_HOST $SINK_HOST" in 127.*" "127.*) ;; *) die "non-loopback address" ;; esac

# pid_alive PIDFILE: true if the pid written in PIDFILE is a running process
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile PIDFILE [SIGNAL]: stop the one process we started, by its pid; KILL
# after 5 s.
stop_pidfile() {
    local f=$1 sig=${2:-TERM} p
    if ! pid_alive "$f"; then rm -f "$f"; return 0; fi
    p=$(cat "$f")
    kill -"$sig" "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    rm -f "$f"
}

# listening PORT: true if something listens on TCP PORT
listening() { [ -n "$(ss -ltnH "sport = :$1")" ]; }

# wait_port PORT [SECONDS]: wait until something listens on PORT (default 10 s)
wait_port() {
    for _ in $(seq $((${2:-10} * 10))); do
        listening "$1" && return 0
        sleep 0.1
    done
    return 1
}

# port_free PORT WHAT: die if PORT is already taken (the machine is shared; we never
# measure, or stop, somebody else's daemon)
port_free() {
    if listening "$1"; then
        die "port $1 ($2) is already in use: $(ss -ltnpH "sport = :$1" | head -1); pick another with MTA_PORT/SINK_PORT"
    fi
}

# need_root WHAT: the Postfix instance and the cgroup need root
need_root() { [ "$(id -u)" -eq 0 ] || die "$1 must run as root (sudo)"; }

# A cgroup holding every process of the MTA under test, so run.sh accounts its CPU
# exactly (cpuacct.usage on cgroup v1, cpu.stat on v2). Summing /proc/PID/stat over a
# process tree misses children whose parent ignores SIGCHLD. Prints nothing when no
# writable cgroup filesystem exists; run.sh then falls back to the process tree.
cg_path() {
    if [ -w /sys/fs/cgroup/cpuacct ]; then
        echo "/sys/fs/cgroup/cpuacct/$CGROUP_NAME"                      # cgroup v1
    elif [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup ]; then
        echo "/sys/fs/cgroup/$CGROUP_NAME"                              # cgroup v2
    fi
}

# start_reaped CMD [ARGS...]: run an MTA's start command under reaper.pl so all of its
# processes (daemonized or double-forked) stay below one pid, written to
# $STATE/mta.pid, and inside the cgroup named in $STATE/mta.cgroup. Output goes to
# $STATE/reaper.log.
start_reaped() {
    local cg
    cg=$(cg_path)
    rm -f "$STATE/mta.pid" "$STATE/mta.cgroup"
    if [ -n "$cg" ]; then mkdir -p "$cg" && echo "$cg" > "$STATE/mta.cgroup"; fi
    # the subshell joins the cgroup first; everything it execs or forks inherits it
    (
        if [ -n "$cg" ]; then echo "$BASHPID" > "$cg/cgroup.procs"; fi
        exec setsid perl "$BENCH_DIR/reaper.pl" "$STATE/mta.pid" "$@"
    ) >> "$STATE/reaper.log" 2>&1 < /dev/null &
    for _ in $(seq 50); do
        [ -s "$STATE/mta.pid" ] && return 0
        sleep 0.1
    done
    die "reaper did not start: $(tail -3 "$STATE/reaper.log")"
}

# wait_reaped [SECONDS]: after an MTA's stop command, wait until its reaper has seen
# every process exit; list what is left (by pid) if that takes too long.
wait_reaped() {
    local r
    r=$(cat "$STATE/mta.pid" 2>/dev/null || true)   # the reaper deletes it when done
    for _ in $(seq $((${1:-20} * 10))); do
        if [ -z "$r" ] || ! kill -0 "$r" 2>/dev/null; then
            if [ -s "$STATE/mta.cgroup" ]; then rmdir "$(cat "$STATE/mta.cgroup")" 2>/dev/null || true; fi
            rm -f "$STATE/mta.pid" "$STATE/mta.cgroup"
            return 0
        fi
        sleep 0.1
    done
    echo "still running under reaper $r:"
    ps --ppid "$r" -o pid,user,cmd || true
    return 1
}

# relay_script TARGET: the start/stop script of a target ("celer-nofsync" has its own
# small wrapper); empty for "loopback", which has no MTA
relay_script() {
    [ "$1" = loopback ] || echo "$BENCH_DIR/$1-relay.sh"
}

# stop_on_exit: from now on, any exit stops the MTA named in $CURRENT (set it while one
# runs, empty it after) and the sink, by pid via their scripts.
CURRENT=""
# shellcheck disable=SC2317  # (called by the trap)
bench_cleanup() {
    if [ -n "$CURRENT" ]; then "$(relay_script "$CURRENT")" stop >/dev/null 2>&1 || true; fi
    "$BENCH_DIR/sink.sh" stop >/dev/null 2>&1 || true
}
stop_on_exit() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}
