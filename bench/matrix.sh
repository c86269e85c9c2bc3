#!/usr/bin/env bash
# matrix.sh [inject] [TARGET...]: a whole comparison in one run.
#
#   matrix.sh inject [SYSTEM...]   the injection benchmark: runs ./inject.sh (default
#                                  systems postfix celer celer-nofsync)
#   matrix.sh [TARGET...]          the relay benchmark (MODE=relay): end-to-end rate
#                                  smtp-source -> MTA -> smtp-sink; default targets
#                                  loopback postfix celer. For each target and size:
#                                  start the MTA, one unrecorded warm-up of WARM
#                                  messages, REPS recorded runs of N, stop, delete the
#                                  spool. "loopback" = straight into the sink, no MTA.
#                                  Only meaningful for MTAs that deliver: celerd does
#                                  not yet, and its runs fail after STALL s.
# Relay knobs: SIZES="4096 51200" REPS=3 N=20000 SESS=20 WARM=2000 LOOP_N=200000
# Results (relay): results/raw.tsv, one row per run; the table via ./summarize.sh.
# A new MTA is added by writing NAME-relay.sh with start|stop|clean|version (listening
# on 127.0.0.1:$MTA_PORT, relaying relay.test to 127.0.0.1:$SINK_PORT, started through
# start_reaped from common.sh) and passing NAME here.
set -euo pipefail
if [ "${1:-}" = inject ]; then shift; exec "$(dirname "$0")/inject.sh" "$@"; fi
. "$(dirname "$0")/common.sh"
cd "$BENCH_DIR"
TARGETS=${*:-loopback postfix celer}
SIZES=${SIZES:-4096 51200}; REPS=${REPS:-3}; N=${N:-20000}; WARM=${WARM:-2000}
LOOP_N=${LOOP_N:-200000}

stop_on_exit

for t in $TARGETS; do
    relay=$(relay_script "$t")
    for size in $SIZES; do
        ./sink.sh restart >/dev/null     # a fresh counter file for each block
        n=$N
        if [ "$t" = loopback ]; then
            n=$LOOP_N
        else
            CURRENT=$t
            "$relay" start || { echo "== $t failed to start, skipped"; CURRENT=""; continue; }
            echo "== $t size=$size: warm-up $WARM"
            N=$WARM SIZE=$size STALL=30 RAW=$RESULTS/warmup.tsv ./run.sh "$t" | grep -v '^  command' || true
        fi
        for r in $(seq "$REPS"); do
            echo "== $t size=$size run $r/$REPS"
            N=$n SIZE=$size ./run.sh "$t" | grep -v '^  command' || true
        done
        if [ "$t" != loopback ]; then
            "$relay" stop || true
            CURRENT=""
            p=$("$relay" problems "$RESULTS/logs/$(date +%Y%m%d-%H%M%S)-$t-$size" || true)
            if [ -n "$p" ]; then echo "   PROBLEM: $p"; fi
            "$relay" clean
            sync -f "$STATE"
        fi
    done
done
./summarize.sh "$RESULTS/raw.tsv"
