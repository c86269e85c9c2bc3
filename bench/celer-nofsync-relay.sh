#!/usr/bin/env bash
# celer-nofsync-relay.sh: celer-relay.sh with Force_Fsync = false (no fsync before the
# 250 to DATA), as its own target name so runs and tables keep the two modes apart.
set -euo pipefail
FSYNC=false exec "$(dirname "$0")/celer-relay.sh" "$@"
