#!/usr/bin/env bash
# celer-relay.sh start|stop|clean|version|accepted|problems PREFIX
#
# Runs celerd with a Momentum-syntax config: listens on 127.0.0.1:$MTA_PORT, relays
# $RELAY_DOMAIN to the sink on 127.0.0.1:$SINK_PORT (Routes in a Domain scope; a celerd
# built before delivery existed accepts and spools only, and warns that Routes is not
# implemented).
#   CELERD   the binary (default: this checkout's release build,
#            build/release/src/bin/celerd; build it with
#            `cmake --preset release && cmake --build --preset release`)
#   FSYNC    Force_Fsync: true (default, fsync before the 250 to DATA) or false
#            (celer-nofsync-relay.sh sets it)
# State: $STATE/celer/{celer.conf,spool/,log/}; "start" wipes it, "clean" deletes it.
#   accepted         messages accepted since start (mainlog reception lines, "@R@")
#   problems PREFIX  after a run (and after stop): copy the paniclog, rejectlog and the
#                    reaper log to PREFIX.* when something looks wrong (paniclog lines
#                    above notice, rejectlog lines, mainlog delivery failures, no clean
#                    "stopped" line) and print a one-line summary of it; print nothing
#                    when all is clean
set -euo pipefail
. "$(dirname "$0")/common.sh"
D=$STATE/celer
CONF=$D/celer.conf
CELERD=${CELERD:-$REPO_DIR/build/release/src/bin/celerd}
FSYNC=${FSYNC:-true}

# celerd's own pid (its Pidfile), else the reaper's children
celerd_pids() {
    if [ -s "$D/celerd.pid" ]; then
        cat "$D/celerd.pid"
    elif [ -s "$STATE/mta.pid" ]; then
        ps --ppid "$(cat "$STATE/mta.pid")" -o pid= || true
    fi
}

problems() {
    local prefix=$1 warn rej fail msgs=()
    # paniclog lines are "TIME:celerd: LEVEL: event key=value..."
    warn=$(grep -cvE ':celerd: (info|notice|debug): ' "$D/log/paniclog.ec" 2>/dev/null || true)
    # (the rejectlog also gets a periodic "TIME: Marker 1" heartbeat: not a rejection)
    rej=$(grep -cv ': Marker [0-9]' "$D/log/rejectlog.ec" 2>/dev/null || true)
    if [ "${warn:-0}" -gt 0 ]; then
        msgs+=("$warn paniclog lines above notice (first: $(grep -m1 -vE ':celerd: (info|notice|debug): ' "$D/log/paniclog.ec" | cut -c1-200))")
    fi
    if [ "${rej:-0}" -gt 0 ]; then
        msgs+=("$rej rejectlog lines (first: $(grep -m1 -v ': Marker [0-9]' "$D/log/rejectlog.ec" | cut -c1-200))")
    fi
    # mainlog records are TIME@ID@ID@ID@TYPE@...: T = transient, P = permanent failure
    fail=$(grep -cE '^[^@]*@[^@]*@[^@]*@[^@]*@[TP]@' "$D/log/mainlog.ec" 2>/dev/null || true)
    if [ "${fail:-0}" -gt 0 ]; then
        msgs+=("$fail mainlog delivery failures (first: $(grep -m1 -E '^[^@]*@[^@]*@[^@]*@[^@]*@[TP]@' "$D/log/mainlog.ec" | cut -c1-200))")
        grep -E '^[^@]*@[^@]*@[^@]*@[^@]*@[TP]@' "$D/log/mainlog.ec" | head -1000 > "$prefix.mainlog-failures" || true
    fi
    if ! pid_alive "$STATE/mta.pid" && ! grep -q ': notice: stopped ' "$D/log/paniclog.ec" 2>/dev/null; then
        msgs+=("celerd is gone without a 'stopped' line (crash?): $(tail -1 "$STATE/reaper.log" 2>/dev/null | cut -c1-200)")
    fi
    if [ ${#msgs[@]} -gt 0 ]; then
        cp "$D/log/paniclog.ec" "$prefix.paniclog" 2>/dev/null || true
        head -1000 "$D/log/rejectlog.ec" > "$prefix.rejectlog" 2>/dev/null || true
        tail -200 "$STATE/reaper.log" > "$prefix.reaper.log" 2>/dev/null || true
        printf 'celer: %s; ' "${msgs[@]}"
        echo "evidence in $prefix.*"
    fi
}

case "${1:-}" in
start)
    [ -x "$CELERD" ] || die "no celerd at $CELERD: cd $REPO_DIR && cmake --preset release && cmake --build --preset release (or set CELERD)"
    case "$FSYNC" in true|false) ;; *) die "FSYNC must be true or false" ;; esac
    port_free "$MTA_PORT" "MTA"
    rm -rf "$D"
    mkdir -p "$D/spool" "$D/log"
    cat > "$CONF" <<CONF
# written by bench/celer-relay.sh
Spoolbase = "$D/spool"
Pidfile = "$D/celerd.pid"
Hostname = "mta.bench.test"
Force_Fsync = $FSYNC
Relay_Hosts = ( "127.0.0.0/8" )
ESMTP_Listener {
  Listen "$MTA_HOST:$MTA_PORT" { }
}
Control_Listener {
  Listen "$D/ctl.sock" { }
}
ec_logger "ec_logger1" {
  mainlog = "$D/log/mainlog.ec"
  rejectlog = "$D/log/rejectlog.ec"
  paniclog = "$D/log/paniclog.ec"
}
Domain "$RELAY_DOMAIN" {
  Routes = ( "smtp://$SINK_HOST?port=$SINK_PORT" )
  Suspend_Delivery = ${HOLD:-false}
}
CONF
    "$CELERD" -c "$CONF" -t > "$D/check.out" 2>&1 || die "celerd -t rejected $CONF: $(cat "$D/check.out")"
    start_reaped "$CELERD" -c "$CONF" -d
    wait_port "$MTA_PORT" 15 || die "celerd not listening on $MTA_PORT: $(tail -3 "$STATE/reaper.log")"
    echo "$("$0" version) pid $(celerd_pids) (reaper $(cat "$STATE/mta.pid")) on $MTA_HOST:$MTA_PORT, force_fsync $FSYNC"
    ;;
stop)
    for p in $(celerd_pids); do kill -TERM "$p" 2>/dev/null || true; done
    wait_reaped 20
    ;;
clean) rm -rf "$D" ;;
version)
    # "celerd 0.1.0" plus the commit of the checkout ("+dirty" with local changes)
    v=$("$CELERD" -h 2>&1 | grep -oE '^celerd [0-9][0-9.a-z-]*' | head -1 || true)
    g=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || true)
    if [ -n "$g" ] && [ -n "$(git -C "$REPO_DIR" status --porcelain -- src 2>/dev/null)" ]; then g="$g+dirty"; fi
    echo "${v:-celerd ?}${g:+ ($g)}"
    ;;
accepted)
    # one mainlog line per accepted message; 0 before the first one
    if [ -f "$D/log/mainlog.ec" ]; then grep -c '@R@' "$D/log/mainlog.ec" || true; else echo 0; fi
    ;;
problems) problems "${2:?usage: $0 problems PREFIX}" ;;
*) echo "usage: $0 start|stop|clean|version|accepted|problems PREFIX" >&2; exit 2 ;;
esac
