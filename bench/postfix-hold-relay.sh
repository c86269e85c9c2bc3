#!/usr/bin/env bash
# postfix-hold-relay.sh: postfix-relay.sh with every message put on hold at the end of
# DATA (PF_HOLD=true): Postfix accepts and fsyncs exactly as usual but delivers
# nothing, i.e. the same work celerd does while it cannot deliver yet. Optional target.
set -euo pipefail
PF_HOLD=true exec "$(dirname "$0")/postfix-relay.sh" "$@"
