#!/usr/bin/env bash
# test.sh: set everything up and run the whole test suite: unit tests, the
# fuzz corpora and the integration tests under ASan+UBSan (ctest), then each
# libFuzzer target for a bounded time (FUZZ_SECONDS, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan -j2
./scripts/fuzz.sh
echo "test.sh: all tests passed"
