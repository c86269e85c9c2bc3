#!/usr/bin/env bash
# run.sh: set everything up and run celerd in the foreground on its embedded
# defaults (etc/celer.conf: SMTP on 127.0.0.1:2525, spool, logs and the
# control socket under ./var). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
exec ./build/release/src/bin/celerd -c etc/celer.conf -d "$@"
