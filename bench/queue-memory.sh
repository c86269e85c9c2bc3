#!/usr/bin/env bash
# queue-memory.sh: resident memory of celerd per queued message.
#
# Starts celerd (this checkout's release build) with delivery suspended for
# relay.test, injects N messages (default 100000, 4 KiB) with smtp-source over 20
# sessions, waits until all are in the spool, and reads celerd's resident set
# (VmRSS) before and after: (after - before) / N is the memory a queued message
# costs. Then restarts celerd on that spool and reports how long recovery took and
# the resident set once every message is back in its queue. Needs ~N x 4.5 KiB of
# disk under $STATE (450 MB for 100000); everything is removed at the end.
#   N=100000 SIZE=4096 bench/queue-memory.sh
set -euo pipefail
. "$(dirname "$0")/common.sh"

N=${N:-100000}
SIZE=${SIZE:-4096}
CELERD=${CELERD:-$REPO_DIR/build/release/src/bin/celerd}
D=$STATE/queue-memory
PORT=${MTA_PORT:-2525}

[ -x "$CELERD" ] || die "no celerd at $CELERD: cmake --preset release && cmake --build --preset release"
rm -rf "$D"
mkdir -p "$D"
cat > "$D/celer.conf" <<CONF
Spoolbase = "$D/spool"
Pidfile = "$D/celerd.pid"
Relay_Hosts = ( "127.0.0.0/8" )
ESMTP_Listener { Listen "127.0.0.1:$PORT" { } }
ec_logger "l" { paniclog = "$D/paniclog.ec" }
Domain "$RELAY_DOMAIN" {
  Routes = ( "smtp://127.0.0.1?port=$SINK_PORT" )
  Suspend_Delivery = true
}
CONF

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
start() {
    "$CELERD" -c "$D/celer.conf" -d > "$D/celerd.out" 2>&1 &
    for _ in $(seq 100); do [ -s "$D/celerd.pid" ] && grep -q "started pid" "$D/celerd.out" && break; sleep 0.1; done
    cat "$D/celerd.pid"
}
stop() { kill -TERM "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; }
count() { find "$D/spool" -mindepth 3 -type f | wc -l; }

pid=$(start)
sleep 1
before=$(rss_kb "$pid")
smtp-source -d -s 20 -m "$N" -l "$SIZE" -f "$SENDER" -t "$RCPT" "127.0.0.1:$PORT"
while [ "$(count)" -lt "$N" ]; do sleep 0.5; done
sleep 2
after=$(rss_kb "$pid")
echo "queued=$N rss_before_kb=$before rss_after_kb=$after bytes_per_message=$(( (after - before) * 1024 / N ))"
stop "$pid"

t0=$(date +%s.%N)
pid=$(start)
until grep -q "spool_recovered complete=" "$D/celerd.out" 2>/dev/null; do sleep 0.1; done
t1=$(date +%s.%N)
sleep 2
echo "restart: recovery_seconds=$(echo "$t1 - $t0" | bc) rss_kb=$(rss_kb "$pid") $(grep -ho 'spool_recovered complete=[0-9]*' "$D/celerd.out" | tail -1)"
stop "$pid"
rm -rf "$D"
