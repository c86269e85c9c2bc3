#!/usr/bin/env bash
# run.sh TARGET: one measurement. The sink must run (./sink.sh start) and so must the
# MTA (./TARGET-relay.sh start), except for TARGET=loopback, which sends straight into
# the sink (no MTA: the ceiling of this machine).
#
# Injects N messages with smtp-source into the MTA on 127.0.0.1:$MTA_PORT over SESS
# parallel sessions, then, depending on MODE:
#   MODE=relay   (default) wait until the sink has counted all N (or TIMEOUT, or STALL s
#                without progress). Rates: injection and end-to-end; MTA CPU over the
#                end-to-end time. Status ok = smtp-source succeeded and the sink got N.
#   MODE=inject  the injection rate is the result: MTA CPU is taken over the injection
#                time only. Status ok = smtp-source succeeded and, when the relay script
#                can count them ("accepted"), the MTA logged all N as accepted. Then,
#                unless WAIT_SINK=0, wait for delivery to the sink for information only:
#                end-to-end is recorded when all N arrive, NA when nothing arrives for
#                STALL s (celerd before it delivers).
# Injection rate = N / time until smtp-source has its 250 for every message.
#
# Knobs (environment):
#   N=20000 messages   SIZE=4096 payload bytes (smtp-source -l)   SESS=20 sessions
#   TIMEOUT=600 s for injection and delivery   STALL=120 (relay) / 5 (inject) s
#   REUSE=1 many messages per connection (smtp-source -d)
#   MEM_EVERY=0.5 s between RSS/PSS samples of the MTA's processes
#   QUIET_PCT=15 QUIET_WAIT=60: first wait up to 60 s for other load to drop below
#                15 % (of 200 %), and record the level seen (bg_before_pct)
#   RAW=results/raw.tsv (relay) or results/inject.tsv (inject): where the row goes
# Prints one line; appends one TSV row; per-run files go to results/logs/TAG.*
set -euo pipefail
. "$(dirname "$0")/common.sh"
TARGET=${1:?usage: run.sh TARGET}
MODE=${MODE:-relay}
case "$MODE" in relay|inject) ;; *) die "MODE must be relay or inject" ;; esac
N=${N:-20000}; SIZE=${SIZE:-4096}; SESS=${SESS:-20}; TIMEOUT=${TIMEOUT:-600}; REUSE=${REUSE:-1}
if [ "$MODE" = inject ]; then STALL=${STALL:-5}; else STALL=${STALL:-120}; fi
PS=$BENCH_DIR/procstat.pl
LOGS=$RESULTS/logs
mkdir -p "$LOGS"
RAW=${RAW:-$RESULTS/$([ "$MODE" = inject ] && echo inject || echo raw).tsv}
TAG=$(date +%Y%m%d-%H%M%S)-$MODE-$TARGET-$SIZE-s$SESS
RELAY=$(relay_script "$TARGET")
SINKPID=$(cat "$STATE/sink.pid" 2>/dev/null || true)
if [ -z "$SINKPID" ] || ! kill -0 "$SINKPID" 2>/dev/null; then die "sink not running (./sink.sh start)"; fi

# --- what to measure: the port, and the MTA's processes (cgroup, else process tree)
CG=""
if [ "$TARGET" = loopback ]; then
    PORT=$SINK_PORT; ROOT=$SINKPID
else
    PORT=$MTA_PORT
    ROOT=$(cat "$STATE/mta.pid" 2>/dev/null || true)
    if [ -z "$ROOT" ] || ! kill -0 "$ROOT" 2>/dev/null; then die "no MTA running under the reaper ($RELAY start)"; fi
    if [ -s "$STATE/mta.cgroup" ]; then CG=$(cat "$STATE/mta.cgroup"); fi
fi
if [ -n "$CG" ]; then
    MEMOF=$CG; mtacpu() { perl "$PS" cgcpu "$CG"; }
else
    MEMOF=$ROOT; mtacpu() { perl "$PS" cpu "$ROOT"; }
fi
if [ "$TARGET" = loopback ]; then
    VERSION="smtp-source/smtp-sink $(postconf -d -h mail_version)"
else
    VERSION=${VERSION:-$("$RELAY" version 2>/dev/null || echo "?")}
fi
# accepted: messages the MTA has logged as accepted so far (empty if it cannot tell)
accepted() { if [ -n "$RELAY" ]; then "$RELAY" accepted 2>/dev/null || true; fi; }

# --- 1. wait until the sink is quiet (no leftovers from an earlier run)
prev=-1; cur=$("$BENCH_DIR/sink.sh" count)
while [ "$cur" != "$prev" ]; do prev=$cur; sleep 1; cur=$("$BENCH_DIR/sink.sh" count); done
BASE=$cur
ACC0=$(accepted)

# --- 1b. the machine may be shared: wait (up to QUIET_WAIT s) for the CPUs to be quiet
sysbusy() {  # busy % of 200 over 1 s
    local a b
    a=$(perl "$PS" sys); sleep 1; b=$(perl "$PS" sys)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); t = 0
        for (i = 1; i <= 8; i++) { d[i] = y[i] - x[i]; t += d[i] }
        printf "%.0f", t ? 200 * (t - d[4] - d[5]) / t : 0 }'
}
QEND=$((SECONDS + ${QUIET_WAIT:-60}))
BG=$(sysbusy)
while [ "$BG" -gt "${QUIET_PCT:-15}" ] && [ $SECONDS -lt $QEND ]; do BG=$(sysbusy); done

# --- 2. monitors: memory sampler, one `top` snapshot TOP_AT s into the run
# (the reaper.pl process, ~3 MB, is left out: it is ours, not the MTA's)
perl "$PS" mem "$MEMOF" "${MEM_EVERY:-0.5}" "$([ "$TARGET" = loopback ] || echo "$ROOT")" > "$LOGS/$TAG.mem" &
MEMPID=$!
# top's first frame has no valid %CPU: take two frames 1 s apart, keep the second
( sleep "${TOP_AT:-2}"; top -b -n2 -d1 -w 200 | awk '/^top - /{f++} f==2' | head -30 ) > "$LOGS/$TAG.top" 2>&1 &
TOPPID=$!
HZ=$(perl "$PS" hz)
CPU0=$(mtacpu); SINK0=$(perl "$PS" cpu "$SINKPID"); S0=$(perl "$PS" sys)

# --- 3. inject
CMD=(smtp-source)
[ "$REUSE" = 1 ] && CMD+=(-d)
CMD+=(-s "$SESS" -m "$N" -l "$SIZE" -f "$SENDER" -t "$RCPT" -M source.test -S bench "$MTA_HOST:$PORT")
echo "${CMD[*]}" > "$LOGS/$TAG.cmd"
SRCRC=0
T0=$EPOCHREALTIME
/usr/bin/time -f "%e %U %S %M" -o "$LOGS/$TAG.srctime" timeout "$TIMEOUT" "${CMD[@]}" > "$LOGS/$TAG.src" 2>&1 || SRCRC=$?
T1=$EPOCHREALTIME

# --- 4. MODE=inject: the CPU window ends here. Then wait for the sink.
if [ "$MODE" = inject ]; then CPU1=$(mtacpu); SINK1=$(perl "$PS" cpu "$SINKPID"); S1=$(perl "$PS" sys); fi
T2=$T1; GOT=$BASE
if [ "$MODE" = relay ] || [ "${WAIT_SINK:-1}" = 1 ]; then
    read -r T2 GOT <<< "$(perl "$PS" waitcount "$STATE/sink.counters" $((BASE + N)) "$TIMEOUT" "$STALL")"
fi
if [ "$MODE" = relay ]; then CPU1=$(mtacpu); SINK1=$(perl "$PS" cpu "$SINKPID"); S1=$(perl "$PS" sys); fi
kill "$MEMPID" 2>/dev/null || true; wait "$MEMPID" 2>/dev/null || true
kill "$TOPPID" 2>/dev/null || true; wait "$TOPPID" 2>/dev/null || true
read -r PRSS PPSS PN < "$LOGS/$TAG.mem" || true
SU=0; SS=0
read -r _ SU SS _ < "$LOGS/$TAG.srctime" 2>/dev/null || true
DELIV=$((GOT - BASE))

# messages the MTA says it accepted in this run (its log may lag a little behind)
ACC=""
if [ -n "$ACC0" ]; then
    for _ in $(seq 50); do
        a=$(accepted); ACC=$((${a:-0} - ACC0))
        [ "$ACC" -ge "$N" ] && break
        sleep 0.1
    done
fi

# --- 5. report: one line on stdout, one row in $RAW
if [ ! -s "$RAW" ]; then
    printf '%s\n' "tag	mode	target	version	size	sess	reuse	N	inject_s	e2e_s	inject_rate	e2e_rate	delivered	accepted	cpu_ms_per_msg	peak_rss_mb	peak_pss_mb	peak_procs	mta_cpu_pct	sink_cpu_pct	source_cpu_pct	sys_busy_pct	other_cpu_pct	bg_before_pct	iowait_pct	steal_pct	status" > "$RAW"
fi
awk -v N="$N" -v t0="$T0" -v t1="$T1" -v t2="$T2" -v hz="$HZ" -v mode="$MODE" \
    -v c0="$CPU0" -v c1="$CPU1" -v k0="$SINK0" -v k1="$SINK1" -v su="${SU:-0}" -v ss="${SS:-0}" \
    -v s0="$S0" -v s1="$S1" -v rss="${PRSS:-0}" -v pss="${PPSS:-0}" -v pn="${PN:-0}" \
    -v tgt="$TARGET" -v ver="$VERSION" -v size="$SIZE" -v sess="$SESS" -v reuse="$REUSE" \
    -v deliv="$DELIV" -v acc="$ACC" -v rc="$SRCRC" -v bg="$BG" -v tag="$TAG" -v res="$RAW" '
BEGIN {
    inj = t1 - t0; e2e = t2 - t0; if (e2e < inj) e2e = inj
    wall = (mode == "inject") ? inj : e2e          # the window the CPU figures cover
    split(s0, a); split(s1, b); tot = 0
    for (i = 1; i <= 8; i++) { d[i] = b[i] - a[i]; tot += d[i] }
    busy = tot ? 200 * (tot - d[4] - d[5]) / tot : 0 # % of one core; 200 = both cores
    iow  = tot ? 200 * d[5] / tot : 0
    stl  = tot ? 200 * d[8] / tot : 0
    mta  = (tgt == "loopback") ? 0 : 100 * (c1 - c0) / hz / wall
    cpums = (tgt == "loopback") ? 0 : 1000 * (c1 - c0) / hz / N
    sink = 100 * (k1 - k0) / hz / wall
    src  = 100 * (su + ss) / wall                   # smtp-source runs only while injecting
    e2erate = (deliv >= N) ? sprintf("%.1f", N / e2e) : "NA"
    e2etxt  = (deliv >= N) ? sprintf("%.0f msg/s (%.2fs)", N / e2e, e2e) : sprintf("NA (sink got %d)", deliv)
    if (mode == "inject")
        ok = (rc == 0 && (acc == "" || acc + 0 >= N))
    else
        ok = (rc == 0 && deliv >= N)
    status = ok ? "ok" : sprintf("FAIL(rc=%d,accepted=%s,delivered=%d)", rc, acc == "" ? "?" : acc, deliv)
    printf "%s %s size=%d sess=%d N=%d: inject %.0f msg/s (%.2fs), end-to-end %s, accepted %s, " \
           "MTA CPU %.2f ms/msg, peak PSS %.1f MB (RSS-sum %.1f MB, %d procs), CPU%%: mta %.0f sink %.0f source %.0f other %.0f " \
           "(busy %.0f/200, iowait %.0f, steal %.0f; before start %d) [%s]\n",
        mode, tgt, size, sess, N, N / inj, inj, e2etxt, acc == "" ? "?" : acc, cpums, pss / 1024, rss / 1024, pn,
        mta, sink, src, busy - mta - sink - src, busy, iow, stl, bg, status
    printf "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%.1f\t%s\t%d\t%s\t%.3f\t%.1f\t%.1f\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%s\n",
        tag, mode, tgt, ver, size, sess, reuse, N, inj, e2e, N / inj, e2erate, deliv, acc == "" ? "NA" : acc,
        cpums, rss / 1024, pss / 1024, pn, mta, sink, src, busy, busy - mta - sink - src, bg, iow, stl, status >> res
}'
echo "  command: ${CMD[*]}   (logs: $LOGS/$TAG.*)"
if [ "$SRCRC" != 0 ]; then echo "  smtp-source exit $SRCRC: $(tail -3 "$LOGS/$TAG.src" | tr '\n' ' ')"; fi
tail -1 "$RAW" | grep -q '	ok$'
