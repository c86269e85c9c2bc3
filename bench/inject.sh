#!/usr/bin/env bash
# inject.sh [SYSTEM...]: the injection benchmark, every system in one run on this machine.
# Default systems: postfix celer celer-nofsync (postfix-hold is optional, see below).
#
# Measures how fast each MTA ACCEPTS mail: N messages from smtp-source over SESS (20)
# parallel sessions, rate = N / time until smtp-source holds a 250 for every message.
# For each message size (CELLS) and repetition, the systems take turns (the order
# rotates each repetition, so slow drift of a shared machine hits all of them alike);
# each turn is:
#   fresh start (empty spool/queue) -> unrecorded warm-up of WARM messages ->
#   recorded run (run.sh, MODE=inject) -> stop -> log check -> spool deleted -> sync
# Then a table of median [min-max] per system and size (injection msg/s, MTA CPU ms per
# message over the injection time, peak memory) and the ratios to Postfix.
#
# Systems (each is a NAME-relay.sh in this folder):
#   postfix        Postfix from Debian, fsync before 250 (its default), relaying to the
#                  sink while it accepts, as in production
#   celer          this checkout's celerd, Force_Fsync = true, relaying to the sink
#                  (a celerd without delivery accepts and spools only; its end-to-end
#                  rate then reads NA and the injection rate is still valid)
#   celer-nofsync  the same with Force_Fsync = false
#   postfix-hold   Postfix accepting only (messages put on hold, nothing delivered):
#                  the like-for-like reference for a celerd that does not deliver
#
# Knobs (environment):
#   CELLS="4096:20000 102400:5000"   SIZE:N pairs (smtp-source -l SIZE, -m N)
#   REPS=3  recorded runs per system and size     WARM=1000 warm-up messages per start
#   SESS=20 sessions   CELERD=path (default build/release/src/bin/celerd, built here
#   when missing or out of date unless BUILD=0)   BENCH_STATE=/tmp/celer-bench
#   MTA_PORT=2525 SINK_PORT=2526   QUIET_PCT/QUIET_WAIT/STALL/TIMEOUT: see run.sh
# Output: results/inject-DATE.tsv (one row per recorded run), results/inject-DATE.md
# (the tables), results/logs/ (per run: command, smtp-source output, top, memory;
# evidence files when an MTA's logs show warnings, rejections, failed deliveries or a
# crash: listed at the end of the report). Exit status 1 if any run failed (error
# reply, fewer than N accepted, MTA did not start).
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$BENCH_DIR"
SYSTEMS=${*:-postfix celer celer-nofsync}
CELLS=${CELLS:-4096:20000 102400:5000}
REPS=${REPS:-3}; WARM=${WARM:-1000}; export SESS=${SESS:-20}
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS/inject-$STAMP.tsv
REPORT=$RESULTS/inject-$STAMP.md
mkdir -p "$RESULTS/logs"

# --- preconditions
need_root "the benchmark (Postfix instance, cgroup)"
for t in $SYSTEMS; do [ -x "$(relay_script "$t")" ] || die "unknown system $t (no $t-relay.sh)"; done
for tool in smtp-source /usr/sbin/smtp-sink postconf ss top perl /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool missing: ./postfix-relay.sh install (apt-get install postfix time procps iproute2 perl)"
done
if [[ " $SYSTEMS " == *" celer"* ]] && [ -z "${CELERD:-}" ] && [ "${BUILD:-1}" != 0 ]; then
    # only the celerd target: a broken unit test elsewhere in the tree does not matter here
    echo "== building celerd (release preset) in $REPO_DIR"
    ( cd "$REPO_DIR" && cmake --preset release && cmake --build --preset release --target celerd ) \
        > "$RESULTS/logs/build-$STAMP.log" 2>&1 || die "build failed: see $RESULTS/logs/build-$STAMP.log"
fi

# Pin what is measured for the whole run: others may rebuild or commit in this checkout
# meanwhile. celerd is copied to $STATE, and each system's version string is taken now.
if [[ " $SYSTEMS " == *" celer"* ]]; then
    src=${CELERD:-$REPO_DIR/build/release/src/bin/celerd}
    [ -x "$src" ] || die "no celerd at $src"
    cp "$src" "$STATE/celerd"
    export CELERD=$STATE/celerd
    CELERD_INFO="$src, built $(date -r "$src" '+%Y-%m-%d %H:%M:%S'), sha256 $(sha256sum "$src" | cut -c1-12), run as a copy in $CELERD"
fi
declare -A VERS
for t in $SYSTEMS; do VERS[$t]=$("$(relay_script "$t")" version 2>/dev/null || echo '?'); done

# Disk: one system's spool exists at a time (deleted after each turn); ask for twice the
# biggest turn plus 1 GiB, measured on the filesystem that holds $STATE.
need=0
for cell in $CELLS; do
    size=${cell%%:*}; n=${cell##*:}
    b=$(( (n + WARM) * (size + 2048) * 2 + (1 << 30) ))
    [ "$b" -gt "$need" ] && need=$b
done
avail=$(df --output=avail -B1 "$STATE" | tail -1 | tr -d ' ')
[ "$avail" -ge "$need" ] || die "only $((avail >> 20)) MiB free on $(df --output=target "$STATE" | tail -1), need $((need >> 20)) MiB"

# --- clean-up on any exit: stop what this script started (by pid, via the scripts)
stop_on_exit

# --- machine and disk facts for the report
fsync_probe() {  # ms per 4 KiB synchronous write on $STATE's filesystem
    local f=$STATE/dsync-probe s
    s=$( { dd if=/dev/zero of="$f" bs=4k count=500 oflag=dsync 2>&1 >/dev/null || true; } | awk '/copied/ { print $(NF-3) }')
    rm -f "$f"
    [ -n "$s" ] && awk -v s="$s" 'BEGIN { printf "%.2f ms per synchronous 4 KiB write (dd oflag=dsync, 500 writes)", 1000 * s / 500 }'
}
{
    echo "# Injection benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
    echo "- state and spools: $STATE on $(df --output=source,fstype "$STATE" | tail -1 | tr -s ' '), $((avail >> 30)) GiB free; $(fsync_probe)"
    echo "- systems: $SYSTEMS; cells (size:N): $CELLS; $REPS recorded runs each after a $WARM-message warm-up; $SESS sessions"
    for t in $SYSTEMS; do echo "- $t: ${VERS[$t]}"; done
    if [ -n "${CELERD_INFO:-}" ]; then echo "- celerd binary: $CELERD_INFO"; fi
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
} | tee "$REPORT"

# --- the runs
./sink.sh restart
failed=0
notes=()
read -ra SYS <<< "$SYSTEMS"
nsys=${#SYS[@]}
for cell in $CELLS; do
    size=${cell%%:*}; n=${cell##*:}
    for rep in $(seq "$REPS"); do
        # rotate the order: rep 1 = a b c, rep 2 = b c a, ...
        order=()
        for i in $(seq 0 $((nsys - 1))); do order+=("${SYS[(i + rep - 1) % nsys]}"); done
        for t in "${order[@]}"; do
            relay=$(relay_script "$t")
            echo "== size=$size N=$n run $rep/$REPS: $t"
            CURRENT=$t
            if ! "$relay" start; then
                echo "   $t failed to start; see $STATE/reaper.log"; failed=1; CURRENT=""; continue
            fi
            export VERSION=${VERS[$t]}
            MODE=inject N=$WARM SIZE=$size QUIET_WAIT=0 RAW=$RESULTS/inject-warmup.tsv ./run.sh "$t" \
                | sed -n '1s/^/   warm-up: /p' || true
            if ! MODE=inject N=$n SIZE=$size RAW=$RAW ./run.sh "$t" | sed 's/^/   /'; then failed=1; fi
            "$relay" stop >/dev/null || failed=1
            CURRENT=""
            # the MTA's own logs: warnings, rejections, failed deliveries, a crash
            p=$("$relay" problems "$RESULTS/logs/$STAMP-$t-$size-r$rep" || true)
            if [ -n "$p" ]; then
                echo "   LOG CHECK: $p"
                notes+=("size=$size run $rep, $p")
            fi
            "$relay" clean
            sync -f "$STATE"     # the next run must not pay for this one's writeback
        done
    done
done
./sink.sh stop >/dev/null

echo
./summarize.sh "$RAW" | tee -a "$REPORT"
if [ ${#notes[@]} -gt 0 ]; then
    { echo; echo "Log checks after the runs (see results/logs/):"; printf -- '- %s\n' "${notes[@]}"; } | tee -a "$REPORT"
fi
echo
echo "rows: $RAW"
echo "report: $REPORT"
exit "$failed"
