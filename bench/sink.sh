#!/usr/bin/env bash
# sink.sh start|stop|restart|count|status: Postfix's smtp-sink on 127.0.0.1:$SINK_PORT
# (default 2526). It accepts and discards every message. Flags used:
#   -c          print running counters "sess=N quit=N mesg=N" (records separated by \r)
#               to stdout, which goes to $STATE/sink.counters
#   -u nobody   drop root privileges after binding (required when run as root)
#   -m 1024     up to 1024 simultaneous connections (default 256)
#   1024        listen backlog
# "count" prints the current mesg= counter (messages received since start).
set -euo pipefail
. "$(dirname "$0")/common.sh"
PIDF=$STATE/sink.pid
OUT=$STATE/sink.counters

count() {
    # the last counter record; 0 before the first one
    local c
    c=$(tail -c 200 "$OUT" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 || true)
    c=${c#mesg=}
    echo "${c:-0}"
}

case "${1:-}" in
start)
    if pid_alive "$PIDF"; then echo "sink already running, pid $(cat "$PIDF")"; exit 0; fi
    port_free "$SINK_PORT" "smtp-sink"
    user=()
    [ "$(id -u)" -eq 0 ] && user=(-u nobody)
    : > "$OUT"
    /usr/sbin/smtp-sink -c "${user[@]}" -m 1024 "$SINK_HOST:$SINK_PORT" 1024 \
        > "$OUT" 2> "$STATE/sink.err" &
    echo $! > "$PIDF"
    wait_port "$SINK_PORT" 5 || die "smtp-sink did not start: $(cat "$STATE/sink.err")"
    echo "sink pid $(cat "$PIDF") on $SINK_HOST:$SINK_PORT, counters in $OUT"
    ;;
stop)    stop_pidfile "$PIDF"; echo "sink stopped" ;;
restart) "$0" stop; "$0" start ;;
count)   count ;;
status)
    if pid_alive "$PIDF"; then echo "running pid $(cat "$PIDF"), mesg=$(count)"; else echo "not running"; fi
    ;;
*) echo "usage: $0 start|stop|restart|count|status" >&2; exit 2 ;;
esac
