#!/usr/bin/env bash
# The whole test suite, with its set-up: installs what the tests need when it
# is missing, runs every test with every feature, and leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- set-up: tools the tests start themselves -------------------------------
# Redis: the Redis tests start their own redis-server (a free 127.0.0.1 port,
# a throwaway directory) and fail when they cannot, so make sure it exists.
if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server not found: installing the Debian package redis-server" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server
fi

# Postgres: the Postgres tests start their own server (initdb into a
# throwaway directory, a free 127.0.0.1 port, as user nobody when run as
# root) and fail when they cannot, so make sure its binaries exist.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "initdb not found: installing the Debian package postgresql" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
fi

# libfaketime: tests/durability.rs steps a child receiver's wall clock with
# it (and fails, rather than skips, without it).
if [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]; then
    echo "libfaketime not found: installing the Debian package faketime" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends faketime
fi

# Chromium and its WebDriver: tests/console_browser.rs drives the console's
# page in a real headless chromium (and fails, rather than skips, without).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "chromium or chromedriver not found: installing the Debian packages chromium and chromium-driver" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

# Python and the providers' own libraries: tests/provider_libraries.rs signs
# deliveries with them (and fails, rather than skips, without them).
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 not found: installing the Debian packages python3 and python3-pip" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-pip
fi
if ! python3 -c "import slack_sdk, twilio, standardwebhooks, nacl" >/dev/null 2>&1; then
    echo "installing the providers' Python libraries" >&2
    python3 -m pip install --quiet --disable-pip-version-check slack_sdk twilio standardwebhooks pynacl \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
            slack_sdk twilio standardwebhooks pynacl
fi

# --- the suite --------------------------------------------------------------
# Benches are left out on purpose: `cargo test --all-targets` would run the
# load generator and the constant-time check; CI compiles them instead.
cargo test --workspace --all-features --lib --bins --tests --examples
cargo test -p tower-webhook --all-features --doc
