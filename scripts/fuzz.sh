#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets (clang, ASan+UBSan) and run each one
# for FUZZ_SECONDS (default 30) on a copy of its seed corpus. Fails if any
# target finds a crash, a leak or undefined behaviour.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
# a leak inside libldns on malformed packets, not celer's (see the file)
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# full allocation stacks (the fast unwinder stops inside libldns, hiding ldns_wire2rr)
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
status=0
for target in build/fuzz/tests/fuzz_*; do
    [ -x "$target" ] || continue
    name=$(basename "$target"); short=${name#fuzz_}
    work=$(mktemp -d)
    cp -r "tests/fuzz/corpus/$short/." "$work/" 2>/dev/null || true
    echo "fuzz: $name for ${seconds}s"
    if ! "$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/" \
            "$work" > "$work.log" 2>&1; then
        echo "fuzz: $name FAILED; last lines:"; tail -40 "$work.log"; status=1
    else
        grep -E 'stat::number_of_executed_units' "$work.log" || true
    fi
    rm -rf "$work" "$work.log"
done
exit $status
