#!/usr/bin/env bash
# file-bound.sh [SIZE:N ...]: the machine's ceiling for a spool that creates, writes and
# fdatasyncs one file per message (file_bound.c: no SMTP, no network, 20 threads like
# the benchmark's 20 sessions), on the filesystem that holds $STATE, where the celer
# spool and the Postfix queue live during inject.sh. Compare it with inject.sh's rates
# measured just before or after: an MTA that spools a file per message cannot accept
# faster than this bound on the same machine.
#   default cells "4096:20000 102400:5000" (as inject.sh); REPS=3 runs each, a fresh
#   directory per run, deleted and synced afterwards; THREADS=20
# Prints every run and, per cell, the median [min-max] rate in files/s.
set -euo pipefail
. "$(dirname "$0")/common.sh"
CELLS=${*:-4096:20000 102400:5000}
REPS=${REPS:-3}; THREADS=${THREADS:-20}
BIN=$STATE/file_bound
cc -O2 -pthread -o "$BIN" "$BENCH_DIR/file_bound.c" || die "cannot build file_bound.c"
for cell in $CELLS; do
    size=${cell%%:*}; n=${cell##*:}
    rates=()
    for rep in $(seq "$REPS"); do
        d=$STATE/file-bound
        rm -rf "$d"; mkdir -p "$d"; sync
        line=$("$BIN" "$d" "$THREADS" "$n" "$size")
        rm -rf "$d"; sync
        echo "size=$size N=$n run $rep/$REPS: $line"
        rates+=("$(awk '{ for (i = 1; i < NF; i++) if ($i == "rate") print $(i + 1) }' <<< "$line")")
    done
    printf '%s\n' "${rates[@]}" | sort -n | awk -v s="$size" -v n="$n" '
        { r[NR] = $1 } END { printf "size=%s N=%s: median %d [%d-%d] files/s\n", s, n, r[int((NR + 1) / 2)], r[1], r[NR] }'
done
