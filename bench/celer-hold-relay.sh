#!/usr/bin/env bash
# celer-hold-relay.sh: celer-relay.sh with delivery suspended (Suspend_Delivery = true
# for the relay domain): celerd accepts and fsyncs every message but delivers nothing.
# The like-for-like peer of postfix-hold when measuring acceptance alone.
set -euo pipefail
HOLD=true exec "$(dirname "$0")/celer-relay.sh" "$@"
