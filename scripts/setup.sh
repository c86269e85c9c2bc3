#!/usr/bin/env bash
# setup.sh: install every Debian package celer's build, tests and benchmarks need.
# Idempotent: runs `apt-get update` once, then installs only what is missing.
# Installing postfix here does not start a system Postfix (tests use smtp-sink only).
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake ninja-build pkg-config clang clang-format clang-tidy
    libclang-rt-14-dev
    # libraries
    libevent-dev libssl-dev libunbound-dev libldns-dev libcmocka-dev libpcre2-dev
    # test peers and clients
    nsd ldnsutils dnsutils swaks postfix openssl iproute2 procps
    python3 python3-pytest python3-aiosmtpd python3-dkim python3-dnspython
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing ${missing[*]}"
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
