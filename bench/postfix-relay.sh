#!/usr/bin/env bash
# postfix-relay.sh install|start|stop|clean|status|version|accepted|problems PREFIX
#
# A throwaway Postfix instance, separate from any system Postfix:
#   config_directory $STATE/postfix/etc, queue_directory $STATE/postfix/queue,
#   listens on 127.0.0.1:$MTA_PORT, relays $RELAY_DOMAIN to [127.0.0.1]:$SINK_PORT.
# Durability is Postfix's normal one: cleanup(8) fsyncs each queue file before the 250
# reply to DATA. There is no switch to turn that off, and we do not try.
#
# PF_HOLD=true (used by postfix-hold-relay.sh) puts every message on hold at the end of
# DATA (smtpd_end_of_data_restrictions = ... HOLD): Postfix still writes and fsyncs the
# queue file before its 250, but qmgr never delivers it. That is Postfix "accepting
# only", the same work celerd does while it cannot deliver yet.
#
#   install          apt-get install postfix, preseeded "No configuration" (no system
#                    Postfix gets configured or started); brings smtp-source, smtp-sink
#   start            rewrite the config, wipe the queue, start under reaper.pl
#   stop / clean     stop this instance / delete its queue and logs
#   accepted         messages accepted since start (cleanup "message-id=" log lines)
#   problems PREFIX  copy warning/fatal/panic/reject log lines to PREFIX.maillog-problems
#                    and print a one-line summary of them (nothing when there are none)
set -euo pipefail
. "$(dirname "$0")/common.sh"
D=$STATE/postfix
ETC=$D/etc
PF=(postfix -c "$ETC")

install() {
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        postfix time procps iproute2 perl
}

setup() {
    if [ -d "$D/queue" ] && "${PF[@]}" status >/dev/null 2>&1; then die "instance running; stop it first"; fi
    rm -rf "$D"
    mkdir -p "$ETC" "$D/queue" "$D/data"
    local hold="# (PF_HOLD unset: normal relaying)"
    if [ "${PF_HOLD:-false}" = true ]; then
        hold="smtpd_end_of_data_restrictions = check_client_access static:HOLD"
    fi
    cat > "$ETC/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $D/queue
data_directory = $D/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.bench.test
mydestination =
inet_interfaces = $MTA_HOST
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = $RELAY_DOMAIN
transport_maps = inline:{$RELAY_DOMAIN=relay:[$SINK_HOST]:$SINK_PORT}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
$hold
local_recipient_maps =
alias_maps =
alias_database =
biff = no
# logging to a file through postlogd (there may be no syslogd)
maillog_file = $D/maillog
maillog_file_prefixes = $STATE
# --- throughput tuning (durability untouched) ---
smtpd_peername_lookup = no
default_process_limit = 200
relay_destination_concurrency_limit = 20
relay_destination_rate_delay = 0
smtp_connection_cache_on_demand = yes
smtp_connection_cache_destinations = [$SINK_HOST]:$SINK_PORT
smtp_connection_reuse_time_limit = 300s
EOF
    # Minimal master.cf, nothing chrooted; smtpd listens only on 127.0.0.1:$MTA_PORT.
    cat > "$ETC/master.cf" <<EOF
$MTA_HOST:$MTA_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    chown postfix "$D/data"
    "${PF[@]}" check || die "postfix check failed (errors are logged to $D/maillog)"
}

rootpid() { head -1 "$D/queue/pid/master.pid" 2>/dev/null | tr -d ' '; }

case "${1:-}" in
install) install ;;
start)
    command -v postfix >/dev/null || die "postfix is not installed: $0 install"
    need_root "a Postfix instance"
    port_free "$MTA_PORT" "MTA"
    setup
    start_reaped "${PF[@]}" start
    wait_port "$MTA_PORT" 10 || die "postfix not listening on $MTA_PORT: $(tail -3 "$STATE/reaper.log")"
    echo "postfix $(postconf -c "$ETC" -h mail_version) master pid $(rootpid) (reaper $(cat "$STATE/mta.pid")) on $MTA_HOST:$MTA_PORT, hold ${PF_HOLD:-false}"
    ;;
stop)
    # "postfix stop" signals only this instance's master (pid file in its queue dir)
    if [ -d "$D/queue" ]; then "${PF[@]}" stop 2>/dev/null || true; fi
    wait_reaped 20
    ;;
clean) rm -rf "$D" ;;
status) "${PF[@]}" status ;;
version) postconf -d -h mail_version 2>/dev/null | sed 's/^/postfix /' || echo "?" ;;
accepted)
    # one "message-id=" line per queue file written by cleanup (postlogd may lag a bit)
    if [ -f "$D/maillog" ]; then
        grep -cE 'postfix/cleanup\[[0-9]+\]: [0-9A-Za-z]+: message-id=' "$D/maillog" || true
    else
        echo 0
    fi
    ;;
problems)
    prefix=${2:?usage: $0 problems PREFIX}
    pat='(warning|fatal|panic|error):|reject:|NOQUEUE'
    n=$(grep -cE "$pat" "$D/maillog" 2>/dev/null || true)
    if [ "${n:-0}" -gt 0 ]; then
        grep -E "$pat" "$D/maillog" | head -1000 > "$prefix.maillog-problems"
        echo "postfix: $n warning/error/reject lines in maillog (first: $(grep -m1 -E "$pat" "$D/maillog" | cut -c1-200)); see $prefix.maillog-problems"
    fi
    ;;
*) echo "usage: $0 install|start|stop|clean|status|version|accepted|problems PREFIX" >&2; exit 2 ;;
esac
